"""``local``: your own high-frame-rate footage as a test set, through the same checks as YouTube240.

The folder named in ``fetch.datasets.local`` holds video files and/or folders of frames (one
folder per shot, images in name order). The capture rate of each comes from an optional
``capture_fps.csv`` in that folder (``name,capture_fps``; a slow-motion file saved at 30 fps needs
its real capture rate there), else from the file's container; a frame folder has no container, so
it must be listed. Every video goes through the frame checks and extraction of
:mod:`alabench.sources.video`, and every clip is test data.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from alabench.config import Params
from alabench.layout import MANIFEST
from alabench.sources import SourceError
from alabench.sources.extract import Batch, failed_error, file_state, fingerprint
from alabench.sources.video import IMAGE_SUFFIXES, Extraction, Video, safe_name

log = logging.getLogger(__name__)

CAPTURE_CSV = "capture_fps.csv"
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mts", ".m2ts"}


def read_capture_rates(folder: Path) -> dict[str, float]:
    """``{file or folder name: capture fps}`` from ``capture_fps.csv``, if there is one."""
    path = folder / CAPTURE_CSV
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != ("name", "capture_fps"):
            raise SourceError(f"{path}: the header must be name,capture_fps, found {reader.fieldnames}")
        rates = {}
        for line, row in enumerate(reader, start=2):
            try:
                rates[row["name"].strip()] = float(row["capture_fps"])
            except (TypeError, ValueError):
                raise SourceError(f"{path}, line {line}: capture_fps {row['capture_fps']!r} is not a number") from None
    return rates


def find_videos(folder: Path) -> list[Path]:
    """Video files and frame folders directly inside ``folder``, by name."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and (
        (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        or (p.is_dir() and any(f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir()))))


def build(params: Params, folder: Path, raw: Path, sharp: Path) -> None:
    """Check and extract every video of ``folder`` into ``sharp/test/``."""
    if not folder.is_dir():
        raise SourceError(f"{folder}: folder not found; put your videos there, or name your folder in "
                          "fetch.datasets.local in params.yaml")
    rates = read_capture_rates(folder)
    items = find_videos(folder)
    unknown = sorted(set(rates) - {p.name for p in items})
    if unknown:
        raise SourceError(f"{folder / CAPTURE_CSV} names {', '.join(unknown)}, but {folder} has no such video "
                          "or frame folder; fix the name or remove the line")
    if not items:
        raise SourceError(f"{folder}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) or frame folders inside")
    cfg = Extraction.from_params(params, params.local.min_fps, reject=True)
    manifest = raw / MANIFEST
    with Batch(sharp, manifest, cfg, params.video.workers) as batch:
        for path in items:
            listed = path.name in rates
            video = Video(str(folder), path.name, path, safe_name(path.stem if path.is_file() else path.name), "test",
                          rates.get(path.name), CAPTURE_CSV if listed else "container")
            batch.submit(video, fingerprint(cfg, video, file_state(path)))
        rows = batch.finish()
    if error := failed_error(rows, manifest):
        raise error
    ok = sum(r["status"] == "ok" for r in rows)
    if ok == 0:
        raise SourceError(f"none of the {len(rows)} videos in {folder} was accepted; the reasons are in {manifest}")
    log.info("local: %d of %d videos accepted (see %s)", ok, len(rows), manifest)
