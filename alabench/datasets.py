"""Torch data sets: training windows blurred on the fly, a fixed validation draw, test clips.

Training decodes the same sharp PNGs over and over, so each clip is decoded once into a
``(T, H, W, 3)`` uint8 ``.npy`` file (``ClipCache``) and memory-mapped afterwards; a sample then
costs one eq. 7 average over its crop (see ``bench/datasets.py`` for the measured difference).
Samples are tensors: ``inputs`` (W, 3, h, w), ``deblur`` (W, 3, h, w), ``interp`` (W-1, 3, h, w),
float32 in [0, 1], and ``blurry`` (W,) bool.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from alabench.blur import Eq7, read_manifest
from alabench.config import TrainDataParams
from alabench.frames import FrameError, atomic_path, list_frames, read_clip, read_png

Sample = dict[str, torch.Tensor]


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).movedim(-1, -3).float().div_(255.0)


def clip_digest(clip_dir: Path) -> str:
    """sha256 over every frame's name and bytes, in order: what a clip's pixels depend on."""
    digest = hashlib.sha256()
    for path in list_frames(clip_dir):
        digest.update(f"{path.name}:".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class ClipCache:
    """Each clip decoded once to ``<cache_dir>/<clip>-<key>.npy`` and memory-mapped from then on.

    The key is :func:`clip_digest`, a hash of the frames' bytes, so new bytes can never be served
    old pixels. A key from ``stat`` cannot promise that: size and mtime survive a rewrite (a
    restore, ``rsync -t``, ``os.utime``), and even ctime and inode, which utime cannot set, are
    only as fine as the file system's clock (1 s on ext3, 2 s on FAT) and reused by a rewrite in
    place. Hashing costs little beside the training it feeds (``bench/clip_cache_key.py``, 2 shared
    cores): 3.0 ms per clip of the default data set against 0.28 ms by stat (10.8x), 0.18 s for its
    60 train clips, once per clip per run; a cache miss decodes for 60 ms. And the same bytes after
    a ``dvc checkout`` keep their cache.
    """

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = Path(cache_dir)
        self._open: dict[Path, np.ndarray] = {}

    def _key(self, clip_dir: Path) -> str:
        return clip_digest(clip_dir)[:24]

    def load(self, clip_dir: Path) -> np.ndarray:
        clip_dir = Path(clip_dir)
        if clip_dir not in self._open:
            path = self.cache_dir / f"{clip_dir.name}-{self._key(clip_dir)}.npy"
            if not path.exists():
                clip = read_clip(clip_dir)
                with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                    np.save(fh, clip)
            self._open[clip_dir] = np.load(path, mmap_mode="r")
        return self._open[clip_dir]


def split_train_val(clip_dirs: list[Path], val_clips: int) -> tuple[list[Path], list[Path]]:
    """The last ``val_clips`` clips (by name) are held out for validation."""
    if val_clips >= len(clip_dirs):
        raise FrameError(f"train_data.val_clips = {val_clips} leaves no training clip: the split has "
                         f"{len(clip_dirs)} clips. Lower it or render more clips")
    clip_dirs = sorted(clip_dirs)
    return clip_dirs[:len(clip_dirs) - val_clips], clip_dirs[len(clip_dirs) - val_clips:]


@dataclass(frozen=True)
class _Window:
    clip: Path
    first_center: int  # sharp index of the window's first input


class _Windows(Dataset):
    """Shared by training and validation: windows of W inputs, each a (clip, first centre) pair."""

    def __init__(self, clip_dirs: list[Path], eq7: Eq7, window: int, cache: ClipCache) -> None:
        self.eq7, self.window, self.cache = eq7, window, cache
        self.starts: dict[Path, int] = {}
        for clip in clip_dirs:
            frames = len(list_frames(clip))
            count = frames - eq7.span(window) + 1
            if count < 1:
                raise FrameError(f"{clip}: {frames} sharp frames are shorter than one training window "
                                 f"({eq7.span(window)} frames: {window} inputs, eq. 7 window {eq7.window}, "
                                 f"stride {eq7.stride}); render longer clips (synth.train.frames) or train on a "
                                 f"shorter window (train_data.window, or the method's own `window` option)")
            self.starts[clip] = count

    def _sample(self, item: _Window, blurry: np.ndarray, region: tuple[slice, slice]) -> Sample:
        sharp = self.cache.load(item.clip)
        centers = [item.first_center + i * self.eq7.stride for i in range(self.window)]
        inputs = np.stack([self.eq7.make_input(sharp, c, bool(b), region) for c, b in zip(centers, blurry)])
        rows, cols = region
        deblur = np.stack([sharp[c, rows, cols] for c in centers])
        interp = np.stack([sharp[c + self.eq7.interp_offset, rows, cols] for c in centers[:-1]])
        return {"inputs": to_tensor(inputs), "deblur": to_tensor(deblur), "interp": to_tensor(interp),
                "blurry": torch.from_numpy(np.asarray(blurry, dtype=bool))}


class TrainWindows(_Windows):
    """Every (clip, start) once per epoch; blur, crop, flips, reversal and channel order drawn
    afresh per sample from a generator seeded by (seed, epoch, index): reproducible, never fixed."""

    def __init__(self, clip_dirs: list[Path], eq7: Eq7, cfg: TrainDataParams, cache: ClipCache) -> None:
        super().__init__(clip_dirs, eq7, cfg.window, cache)
        self.cfg = cfg
        self.epoch = 0
        self.index = [_Window(clip, eq7.tau + s) for clip, n in self.starts.items() for s in range(n)]
        for clip in clip_dirs:
            h, w = read_png(list_frames(clip)[0]).shape[:2]
            if cfg.crop > min(h, w):
                raise FrameError(f"train_data.crop = {cfg.crop} is larger than the frames of {clip} ({w}x{h}); "
                                 "lower it, or set 0 to train on whole frames")

    def _region(self, item: _Window, rng: np.random.Generator) -> tuple[slice, slice]:
        """A random square of side ``crop``; the whole frame where ``crop`` is 0 (the latent then has
        the spatial extent it has at test time: a 64-px crop leaves ALANet a 2x2 latent)."""
        h, w = self.cache.load(item.clip).shape[1:3]
        side = self.cfg.crop
        if side == 0:
            return slice(None), slice(None)
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        return slice(y, y + side), slice(x, x + side)

    def set_epoch(self, epoch: int) -> None:
        """Call at the start of each epoch (like DistributedSampler) to get new random draws."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Sample:
        item = self.index[i]
        rng = np.random.default_rng([self.cfg.seed, self.epoch, i])
        blurry = rng.random(self.window) < self.cfg.p_blur
        sample = self._sample(item, blurry, self._region(item, rng))
        frames = ("inputs", "deblur", "interp")
        if self.cfg.hflip and rng.random() < 0.5:
            sample.update({k: sample[k].flip(-1) for k in frames})
        if self.cfg.vflip and rng.random() < 0.5:
            sample.update({k: sample[k].flip(-2) for k in frames})
        if self.cfg.reverse and rng.random() < 0.5:  # interp targets stay midway between their inputs
            sample.update({k: sample[k].flip(0) for k in (*frames, "blurry")})
        if self.cfg.channel_shuffle:
            order = torch.from_numpy(rng.permutation(3))
            sample.update({k: sample[k][:, order] for k in frames})
        return sample


class ValidationWindows(_Windows):
    """Full-frame windows at evenly spaced starts of the held-out clips; which inputs are blurry
    (rate ``val_p_blur``) is drawn once for good."""

    def __init__(self, clip_dirs: list[Path], eq7: Eq7, cfg: TrainDataParams, cache: ClipCache) -> None:
        super().__init__(clip_dirs, eq7, cfg.window, cache)
        rng = np.random.default_rng([cfg.seed, 1])  # stream 1: never the training draws
        self.items: list[tuple[_Window, np.ndarray]] = []
        for clip, count in self.starts.items():
            for s in np.unique(np.linspace(0, count - 1, cfg.val_windows_per_clip).round().astype(int)):
                self.items.append((_Window(clip, eq7.tau + int(s)), rng.random(cfg.window) < cfg.val_p_blur))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        item, blurry = self.items[i]
        return self._sample(item, blurry, (slice(None), slice(None)))


class PngFrames(Sequence[np.ndarray]):
    """(H, W, 3) uint8 frames read from their PNGs when indexed, never held: evaluation streams a
    clip of any length. A missing file is an error naming it when the sequence is made."""

    def __init__(self, paths: list[Path]) -> None:
        for path in paths:
            if not path.is_file():
                raise FrameError(f"{path}: frame file is missing; run `dvc repro` for the blur stage")
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:  # type: ignore[override]
        return read_png(self.paths[i])

    def __iter__(self) -> Iterator[np.ndarray]:
        return (read_png(path) for path in self.paths)


@dataclass
class TestClip:
    """One prepared test clip: K inputs, K deblur targets, K-1 interpolation targets, each a
    sequence of (H, W, 3) uint8 frames (PngFrames from disk, or an array)."""

    name: str
    inputs: Sequence[np.ndarray]
    blurry: np.ndarray
    gt_deblur: Sequence[np.ndarray]
    gt_interp: Sequence[np.ndarray]
    input_paths: list[str]
    gt_deblur_paths: list[str]
    gt_interp_paths: list[str]
    video: str = ""  # the source video it was cut from (the test unit); "" = the clip itself

    def __post_init__(self) -> None:
        self.video = self.video or self.name


def iter_test_clips(protocol_dir: Path, root: Path = Path(".")) -> Iterator[TestClip]:
    """Clips of a prepared protocol (``data/prepared/<ds>/test/<protocol>``), in manifest order;
    their frames are read when used."""
    rows = read_manifest(Path(protocol_dir) / "manifest.csv")
    clips: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        clips.setdefault(row["clip"], []).append(row)
    for name, clip_rows in clips.items():
        clip_rows.sort(key=lambda r: int(r["k"]))
        paths = {key: [r[key] for r in (clip_rows[:-1] if key == "gt_interp" else clip_rows)]
                 for key in ("input", "gt_deblur", "gt_interp")}
        yield TestClip(
            name=name,
            inputs=PngFrames([root / p for p in paths["input"]]),
            blurry=np.array([r["blurry"] == "1" for r in clip_rows]),
            gt_deblur=PngFrames([root / p for p in paths["gt_deblur"]]),
            gt_interp=PngFrames([root / p for p in paths["gt_interp"]]),
            input_paths=paths["input"],
            gt_deblur_paths=paths["gt_deblur"],
            gt_interp_paths=paths["gt_interp"],
            video=clip_rows[0]["video"],
        )
