"""Frames on disk: RGB uint8 PNG, numbered ``00000.png`` upwards, written atomically.

Every writer goes through a temporary file in the same folder and ``os.replace``, so a killed stage
never leaves half a file that a later run would mistake for a finished one. Every reader names the
file it could not use.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from alabench.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)
FRAME_PATTERN = re.compile(r"^(\d{5})\.png$")


class FrameError(UserError, RuntimeError):
    """A frame or clip folder that cannot be used; the message names the file and what to do."""


def frame_name(index: int) -> str:
    return f"{index:05d}.png"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it becomes ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _old(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def clean_leftovers(path: Path) -> None:
    """Remove what a killed :func:`atomic_dir` left beside ``path``: its ``.<name>.XXXXXXXX.tmp``
    folders and ``.<name>.old``; the latter is put back first if ``path`` itself is gone (killed
    between the two renames), since it is then the last complete output."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    old = _old(path)
    if old.is_dir() and not path.exists():
        os.replace(old, path)
    shutil.rmtree(old, ignore_errors=True)
    leftover = re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.tmp")
    for entry in path.parent.iterdir():
        if entry.is_dir() and leftover.fullmatch(entry.name):
            shutil.rmtree(entry, ignore_errors=True)


def visible_dirs(folder: Path) -> list[Path]:
    """Sub-folders of ``folder`` by name, without dot-folders (temporary and hidden ones are no data)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith("."))


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path`` whole.

    A stage that fails half-way leaves the previous complete output in place, and what an earlier
    killed run left beside it is cleaned first (:func:`clean_leftovers`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; outputs get the usual permissions
    try:
        yield tmp
        old = _old(path)
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_png(path: Path, image: np.ndarray, compression: int = 3) -> None:
    """Write an (H, W, 3) uint8 RGB image atomically; the bytes depend only on the pixels."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{path}: expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    with atomic_path(path) as tmp:
        Image.fromarray(image, "RGB").save(tmp, format="PNG", compress_level=compression)


def read_png(path: Path) -> np.ndarray:
    """Read an RGB PNG as (H, W, 3) uint8; grey or RGBA files are an error, not a silent conversion."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode != "RGB":
                raise FrameError(f"{path}: expected an RGB PNG, found mode {img.mode}; re-export it as 8-bit RGB")
            return np.asarray(img, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise FrameError(f"{path}: frame file is missing") from None
    except FrameError:
        raise
    except Exception as err:  # PIL raises several types for broken files
        raise FrameError(f"{path}: cannot read this PNG ({err}); delete or regenerate it") from None


def natural_key(path: Path) -> list[int | str]:
    """Sort key that orders numbered names as numbers: ``2.png`` before ``10.png`` (text order puts
    ``10`` first, which scrambles any frame folder numbered without zero padding)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_frames(clip_dir: Path) -> list[Path]:
    """The frames of a clip in order; a gap in the numbering is an error naming the missing file."""
    clip_dir = Path(clip_dir)
    if not clip_dir.is_dir():
        raise FrameError(f"{clip_dir}: clip folder not found")
    indices = sorted(int(m.group(1)) for p in clip_dir.iterdir() if (m := FRAME_PATTERN.match(p.name)))
    if not indices:
        raise FrameError(f"{clip_dir}: no frames named 00000.png, 00001.png, ... in this folder")
    for expected, found in enumerate(indices):
        if expected != found:
            raise FrameError(f"{clip_dir / frame_name(expected)}: frame is missing (the clip has frames up to "
                             f"{frame_name(indices[-1])}); re-run the stage that writes this clip")
    return [clip_dir / frame_name(i) for i in indices]


def list_clips(split_dir: Path) -> list[Path]:
    """Clip folders of a split, sorted by name."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise FrameError(f"{split_dir}: split folder not found; run the stage that produces it first")
    clips = visible_dirs(split_dir)
    if not clips:
        raise FrameError(f"{split_dir}: no clip folders inside")
    return clips


def read_clip(clip_dir: Path) -> np.ndarray:
    """All frames of a clip as one (T, H, W, 3) uint8 array; frames of different sizes are an error."""
    paths = list_frames(clip_dir)
    first = read_png(paths[0])
    clip = np.empty((len(paths), *first.shape), dtype=np.uint8)
    clip[0] = first
    for i, path in enumerate(paths[1:], start=1):
        frame = read_png(path)
        if frame.shape != first.shape:
            raise FrameError(f"{path}: frame is {frame.shape[1]}x{frame.shape[0]} but {paths[0].name} is "
                             f"{first.shape[1]}x{first.shape[0]}; every frame of a clip must have one size")
        clip[i] = frame
    return clip
