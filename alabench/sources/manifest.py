"""A fetched data set's ``data/raw/<dataset>/manifest.csv``: its columns and how to read it.

One row per video (alabench.sources.extract writes them): where it came from, whether it is ok,
rejected or failed and why, its rates, sizes, flags and clips. Kept apart from the fetch code and
free of torch, so that readers (the report's notes on flagged test videos) do not depend on the
code that decodes videos.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from pathlib import Path

from alabench.layout import MANIFEST, raw_dir

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("source", "id", "split", "status", "reason", "capture_fps", "capture_fps_from",
                    "container_fps", "width", "height", "frames", "timing_jitter", "flags", "clips", "key")
Row = dict[str, str]


def manifest_path(dataset: str, root: Path = Path(".")) -> Path:
    """data/raw/<dataset>/manifest.csv."""
    return raw_dir(dataset, root) / MANIFEST


def read_manifest(path: Path) -> dict[str, Row]:
    """Rows of an earlier run by id ({} if none, or if its columns are not this version's)."""
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
            log.warning("%s: columns differ from this version's; every video is redone", path)
            return {}
        return {row["id"]: row for row in reader}


def flagged_notes(root: Path, datasets: Iterable[str]) -> list[str]:
    """One line per test video that a data set kept although the checks flagged it (irregular
    timing, upscaled, stretched, cut): the report names them beside the scores they are part of.
    Data sets without a manifest (synth) give none."""
    notes = []
    for dataset in datasets:
        for row in read_manifest(manifest_path(dataset, root)).values():
            if row["status"] == "ok" and row["split"] == "test" and row["flags"]:
                notes.append(f"{dataset}/{row['id']} ({row['flags']}): {row['reason']}")
    return notes
