"""Paper eq. 7, the one implementation that the blur stage and the training data sets both call.

Input frame k of a clip is centred on sharp frame ``c_k = c_0 + stride * k`` (``c_0 = tau``, so
the first blurry input has all its frames). A *blurry* input is the mean of the ``2 tau + 1``
sharp frames ``c_k - tau .. c_k + tau`` (BIN: 11 frames at 240 fps, 30 fps inputs); a *sharp*
input is sharp frame ``c_k`` itself. Targets: deblurring = sharp ``c_k``; interpolation = sharp
``c_k + stride / 2``, midway to the next input (the paper's "5th and 9th" frames counted from 0 in
the window, 60 fps output).

The mean is computed exactly (integer sum, then one division), so truncation and rounding give
the same bytes on every machine.
"""

from __future__ import annotations

import csv
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from alabench.config import BlurParams
from alabench.frames import (
    FrameError,
    atomic_path,
    list_clips,
    list_frames,
    read_clip,
    write_png,
)
from alabench.progress import progress
from alabench.vocabulary import PROTOCOLS

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("video", "clip", "k", "center", "blurry", "input", "gt_deblur", "gt_interp")
# data/sharp/<ds>/videos.csv (clip,video): the independent source of each clip, the test unit of
# alabench.stats: the source video (a fetch stage writes it from its manifest), or on synth the photo,
# ``photo:<name>`` (a unit of another kind than a video is written ``<kind>:<name>``; the synth stage
# writes it). A clip it does not list is its own unit.
VIDEO_MAP = "videos.csv"


@dataclass(frozen=True)
class Eq7:
    """Where inputs and targets sit among the sharp frames, and how a blurry input is formed."""

    window: int = 11
    stride: int = 8
    rounding: Literal["truncate", "round"] = "truncate"

    @classmethod
    def from_params(cls, p: BlurParams) -> Eq7:
        return cls(p.window, p.stride, p.rounding)

    @property
    def tau(self) -> int:
        return self.window // 2

    @property
    def interp_offset(self) -> int:
        return self.stride // 2

    def span(self, inputs: int) -> int:
        """Sharp frames needed for ``inputs`` consecutive inputs."""
        return self.window + (inputs - 1) * self.stride

    def centers(self, num_sharp: int) -> list[int]:
        """Sharp index of every input that fits in a clip of ``num_sharp`` frames."""
        return list(range(self.tau, num_sharp - self.tau, self.stride))

    def average(self, frames: np.ndarray) -> np.ndarray:
        """Mean of (window, ..., 3) uint8 frames -> uint8, truncated or rounded half up."""
        if frames.shape[0] != self.window or frames.dtype != np.uint8:
            raise ValueError(f"expected {self.window} uint8 frames, got {frames.dtype} {frames.shape}")
        total = frames.sum(axis=0, dtype=np.uint32)
        if self.rounding == "truncate":
            return (total // self.window).astype(np.uint8)
        return ((2 * total + self.window) // (2 * self.window)).astype(np.uint8)

    def make_input(self, sharp: np.ndarray, center: int, blurry: bool,
                   region: tuple[slice, slice] = (slice(None), slice(None))) -> np.ndarray:
        """Input frame centred on sharp index ``center`` of a (T, H, W, 3) uint8 clip, cropped to ``region``."""
        if center - self.tau < 0 or center + self.tau >= len(sharp):
            raise IndexError(f"input centred on frame {center} needs frames {center - self.tau}.."
                             f"{center + self.tau}, the clip has 0..{len(sharp) - 1}")
        rows, cols = region
        if not blurry:
            return np.array(sharp[center, rows, cols])
        return self.average(np.asarray(sharp[center - self.tau:center + self.tau + 1, rows, cols]))


def blur_draw(seed: int, clip: str, count: int, p_blur: float) -> np.ndarray:
    """Which inputs of a clip are blurry under the `mixed` protocol: fixed by (seed, clip name)."""
    rng = np.random.default_rng([seed, zlib.crc32(clip.encode())])
    return rng.random(count) < p_blur


def write_video_map(raw_manifest: Path, sharp_dir: Path) -> None:
    """``sharp_dir/videos.csv`` (clip, video) from a fetch manifest's accepted rows (id, clips)."""
    with open(raw_manifest, newline="") as fh:
        pairs = sorted((clip, row["id"]) for row in csv.DictReader(fh) if row["status"] == "ok"
                       for clip in row["clips"].split())
    with atomic_path(Path(sharp_dir) / VIDEO_MAP) as tmp, open(tmp, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["clip", "video"])
        writer.writerows(pairs)


def read_video_map(sharp_dir: Path) -> dict[str, str]:
    """clip -> test unit from ``sharp_dir/videos.csv``; {} where there is none (each clip its own unit)."""
    path = Path(sharp_dir) / VIDEO_MAP
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        return {row["clip"]: row["video"] for row in csv.DictReader(fh)}


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), root.resolve())).as_posix()


def prepare_split(sharp_split: Path, out_split: Path, params: BlurParams, root: Path = Path("."),
                  final_split: Path | None = None) -> dict[str, int]:
    """Write both test protocols of one split: ``out_split/<protocol>/<clip>/input_XXXXX.png``
    and ``out_split/<protocol>/manifest.csv``; returns the number of inputs per protocol.

    Manifest paths are relative to ``root`` and name ``final_split`` (default ``out_split``): the
    folder the inputs will live in once a stage has moved its temporary output into place.
    """
    final_split = Path(final_split or out_split)
    eq7 = Eq7.from_params(params)
    protocol_p = {"all_blurry": 1.0, "mixed": params.p_blur}
    rows: dict[str, list[dict[str, object]]] = {p: [] for p in PROTOCOLS}
    videos = read_video_map(Path(sharp_split).parent)
    for clip_dir in progress(list_clips(sharp_split), desc=f"blur {sharp_split}", unit="clip"):
        frames = list_frames(clip_dir)
        centers = eq7.centers(len(frames))
        if len(centers) < 2:
            raise FrameError(f"{clip_dir}: {len(frames)} sharp frames make {len(centers)} input(s); a test clip "
                             f"needs at least {eq7.span(2)} frames (two inputs, window {eq7.window}, "
                             f"stride {eq7.stride}). Render or extract longer clips")
        sharp = read_clip(clip_dir)
        for protocol in PROTOCOLS:
            blurry = blur_draw(params.seed, clip_dir.name, len(centers), protocol_p[protocol])
            for k, (center, is_blurry) in enumerate(zip(centers, blurry)):
                input_path = out_split / protocol / clip_dir.name / f"input_{k:05d}.png"
                write_png(input_path, eq7.make_input(sharp, center, bool(is_blurry)))
                last = k == len(centers) - 1
                rows[protocol].append({
                    "video": videos.get(clip_dir.name, clip_dir.name), "clip": clip_dir.name, "k": k, "center": center, "blurry": int(is_blurry),
                    "input": _relative(final_split / input_path.relative_to(out_split), root),
                    "gt_deblur": _relative(frames[center], root),
                    "gt_interp": "" if last else _relative(frames[center + eq7.interp_offset], root),
                })
    for protocol in PROTOCOLS:
        with atomic_path(out_split / protocol / "manifest.csv") as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            writer.writerows(rows[protocol])
    return {p: len(r) for p, r in rows.items()}


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of a prepared protocol's manifest.csv, checked for the expected columns."""
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
                raise FrameError(f"{path}: columns {reader.fieldnames} differ from {list(MANIFEST_COLUMNS)}; "
                                 "re-run the blur stage")
            return list(reader)
    except FileNotFoundError:
        raise FrameError(f"{path}: manifest not found; run `dvc repro` for the blur stage first") from None
