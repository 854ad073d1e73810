"""Many videos into one data set, in parallel, with a manifest that makes re-runs cheap.

``data/raw/<dataset>/manifest.csv`` has one row per video: where it came from, whether it is ok,
rejected (it breaks a rule; the reason says which) or failed (it could not be fetched or decoded),
its capture rate and where that came from, its container rate, its source size (upright, before
resizing), the frames decoded, the timing jitter of their timestamps, flags (``irregular_timing``,
``upscaled``, ``aspect_changed``, ``cuts``: kept but worth a look, the reason says why) and the
clips written (its columns and reader: alabench.sources.manifest). The manifest is rewritten
(atomically) after every video, so a killed run keeps what it finished. A row also holds a *key*: a hash of the video file (name, size and sha256 of its
bytes, :func:`file_state`) and of every setting its clips depend on. A re-run reuses an ok or
rejected row whose key still matches and whose clips are all there, retries failed ones, and
removes clips that no current row claims. A source accepted or refused whole (a zip) extracts into
a working copy of its folder (:func:`staged`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from pathlib import Path

from alabench.errors import UserError
from alabench.frames import atomic_path, clean_leftovers
from alabench.parallel import executor
from alabench.progress import progress
from alabench.sources import SourceError
from alabench.sources.manifest import MANIFEST_COLUMNS, Row, read_manifest
from alabench.sources.video import Extraction, Result, Video, extract_video

log = logging.getLogger(__name__)


def fingerprint(*parts: object) -> str:
    """A short stable hash of JSON-able parts (dataclasses included)."""
    def plain(obj: object) -> object:
        return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else str(obj)  # type: ignore[arg-type]
    return hashlib.sha256(json.dumps(parts, default=plain, sort_keys=True).encode()).hexdigest()[:16]


def file_state(path: Path) -> list[tuple[str, int, str]]:
    """(name, size, sha256) of a file, or of every file of a frame folder: what a key must notice.
    The bytes, not the mtime: a file rewritten with its size and mtime kept (a restore, ``rsync
    -t``) would otherwise keep its old clips. One read per run, as DVC's own hash of the folder
    already makes; decoding, which a matching key saves, costs far more."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    out = []
    for p in files:
        with open(p, "rb") as fh:
            out.append((p.name, p.stat().st_size, hashlib.file_digest(fh, "sha256").hexdigest()))
    return out


@contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A working copy of the folder ``target`` (hard links: no bytes copied; every writer replaces
    files, never rewrites one in place) that replaces ``target`` only if the block succeeds.

    For a source that is accepted or refused whole (a zip): a refusal (a :class:`UserError`)
    removes the copy, so ``target`` keeps exactly what it held before, nothing of the refused
    source; a killed or crashed run leaves the copy (``.<name>.partial``) for the next run to go on
    in, so finished videos are not redone.
    """
    target = Path(target)
    work = target.with_name(f".{target.name}.partial")
    clean_leftovers(target)  # a run killed between the two renames below
    if not work.is_dir():
        copying = target.with_name(f".{target.name}.copying")
        shutil.rmtree(copying, ignore_errors=True)
        if target.is_dir():
            shutil.copytree(target, copying, symlinks=True, copy_function=os.link)
        else:
            copying.mkdir(parents=True)
        os.replace(copying, work)
    try:
        yield work
    except UserError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old")  # the name alabench.frames.clean_leftovers restores
    if target.exists():
        os.replace(target, old)
    os.replace(work, target)
    shutil.rmtree(old, ignore_errors=True)


def make_row(source: str, video_id: str, split: str, key: str, result: Result) -> Row:
    def num(x: float | None) -> str:
        return "" if x is None else f"{x:.6g}"
    return {"source": source, "id": video_id, "split": split, "status": result.status,
            "reason": result.reason, "capture_fps": num(result.capture_fps),
            "capture_fps_from": result.capture_fps_from, "container_fps": num(result.container_fps),
            "width": str(result.width or ""), "height": str(result.height or ""), "frames": str(result.frames),
            "timing_jitter": "" if result.timing_jitter is None else f"{result.timing_jitter:.3f}",
            "flags": " ".join(result.flags),
            "clips": " ".join(result.clips), "key": key}


class Batch:
    """Extract videos into ``sharp_dir/<split>/`` with ``workers`` processes, recording each in the
    manifest as it finishes. Use as a context manager; :meth:`finish` returns every row."""

    def __init__(self, sharp_dir: Path, manifest_path: Path, cfg: Extraction, workers: int) -> None:
        self.sharp_dir, self.manifest_path, self.cfg = Path(sharp_dir), Path(manifest_path), cfg
        self.old = read_manifest(self.manifest_path)
        self.rows: dict[str, Row] = {}
        self.names: dict[str, str] = {}  # clip name prefix -> video id
        self.pending: dict[Future, tuple[Video, str]] = {}
        self.pool = executor(workers)
        self.bar = progress(total=0, desc=f"extract {self.sharp_dir.name}", unit="video")

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.bar.close()

    @property
    def ok(self) -> int:
        return sum(r["status"] == "ok" for r in self.rows.values())

    def reusable(self, video_id: str, key: str) -> Row | None:
        """The earlier row for ``video_id`` if it is final (ok / rejected), current and complete."""
        row = self.old.get(video_id)
        if row is None or row["key"] != key or row["status"] not in ("ok", "rejected"):
            return None
        split_dir = self.sharp_dir / row["split"]
        return row if all((split_dir / c / "00000.png").is_file() for c in row["clips"].split()) else None

    def record(self, row: Row) -> None:
        """Add a row decided without extraction (or reused), and save the manifest."""
        self.rows[row["id"]] = row
        self._save()

    def _save(self) -> None:
        with atomic_path(self.manifest_path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            writer.writerows(sorted(self.rows.values(), key=lambda r: (r["split"], r["id"])))  # same bytes every run

    def submit(self, video: Video, key: str) -> None:
        """Queue one video, unless an earlier run already did it with the same key."""
        self.bar.total += 1
        owner = self.names.setdefault(video.name, video.id)
        if owner != video.id:
            clash = Result("failed", f"its clip names ({video.name}-NNN) are those of {owner}: rename one of the two")
            self.record(make_row(video.source, video.id, video.split, key, clash))
            self.bar.update()
            return
        if (row := self.reusable(video.id, key)) is not None:
            self.record({**row, "source": video.source})
            self.bar.update()
            return
        self._remove_clips(video)
        split_dir = self.sharp_dir / video.split
        split_dir.mkdir(parents=True, exist_ok=True)
        self.pending[self.pool.submit(extract_video, video, split_dir, self.cfg)] = (video, key)
        self.collect(block=False)

    def _remove_clips(self, video: Video) -> None:
        old = self.old.get(video.id)
        for clip in old["clips"].split() if old else []:
            shutil.rmtree(self.sharp_dir / old["split"] / clip, ignore_errors=True)

    def collect(self, block: bool) -> None:
        """Record the videos that have finished; with ``block``, wait for at least one first."""
        if not self.pending:
            return
        done, _ = wait(list(self.pending), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            video, key = self.pending.pop(future)
            self.record(make_row(video.source, video.id, video.split, key, future.result()))
            self.bar.update()

    def finish(self) -> list[Row]:
        """Wait for every video, remove clips that no ok row claims, and return all rows."""
        while self.pending:
            self.collect(block=True)
        claimed = {(r["split"], c) for r in self.rows.values() if r["status"] == "ok" for c in r["clips"].split()}
        for split_dir in (p for p in self.sharp_dir.glob("*") if p.is_dir()):
            for clip in split_dir.iterdir():
                if (split_dir.name, clip.name) not in claimed:
                    log.info("removing %s: no current video claims it", clip)
                    shutil.rmtree(clip) if clip.is_dir() else clip.unlink()
            if not any(split_dir.iterdir()):
                split_dir.rmdir()
        self._save()
        return list(self.rows.values())


def failed_error(rows: list[Row], manifest: Path) -> SourceError | None:
    """One error naming every failed video, or None."""
    failed = [r for r in rows if r["status"] == "failed"]
    if not failed:
        return None
    lines = "\n".join(f"  {r['id']}: {r['reason']}" for r in failed)
    return SourceError(f"{len(failed)} of {len(rows)} videos failed (the others are done; see {manifest}):\n{lines}\n"
                       "Fix or remove them and run the stage again: only what is missing is redone")
