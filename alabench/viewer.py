"""The report's viewer: whole clips frame by frame, input and ground truth beside any two methods.

The evaluate stage keeps every output frame of its first ``evaluate.viewer_clips`` clips (lossless
PNG, in ``samples/`` with ``samples.csv`` naming the inputs and ground truth of each). The report
copies them next to the page (``reports/assets/viewer/<dataset>/<protocol>/<clip>/...``) and
describes them in a small JSON that the page's script reads; the images load only when shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

SAMPLE_COLUMNS = ["clip", "k", "kind", "output", "inputs", "target"]


def read_samples(folder: Path) -> pd.DataFrame:
    """A result folder's ``samples/samples.csv`` (empty where there is none)."""
    path = Path(folder) / "samples" / "samples.csv"
    if not path.is_file():
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    return pd.read_csv(path, dtype={"clip": str, "inputs": str})


def whole_clips(samples: pd.DataFrame) -> list[str]:
    """Clips whose every input has its deblurred frame in ``samples`` (at least two inputs)."""
    clips = []
    for clip, rows in samples[samples["kind"] == "deblur"].groupby("clip", sort=False):
        ks = sorted(rows["k"].astype(int))
        if len(ks) >= 2 and ks == list(range(len(ks))):
            clips.append(str(clip))
    return clips


def _label(kind: str, k: int) -> str:
    return f"frame {k} (deblurred)" if kind == "deblur" else f"frame {k}½ (interpolated)"


def viewer_set(root: Path, dataset: str, protocol: str, folders: dict[str, Path]) -> tuple[dict[str, Any] | None,
                                                                                             dict[str, Path]]:
    """The viewer of one data set and protocol from each method's result folder: ({dataset, protocol,
    methods, clips: [{name, frames: [{label, input, gt, out: {method: asset}}]}]}, {asset: source}),
    frames in playing order (deblurred k, interpolated k, deblurred k + 1, ...: the 60 fps output).
    None where no method kept a whole clip."""
    tables = {method: read_samples(folder) for method, folder in folders.items()}
    names = [c for t in tables.values() for c in whole_clips(t)]
    clips = list(dict.fromkeys(names))
    base = f"assets/viewer/{dataset}/{protocol}"
    copies: dict[str, Path] = {}
    out_clips = []
    for clip in clips:
        frames: dict[tuple[int, int], dict[str, Any]] = {}
        for method, table in tables.items():
            for row in table[table["clip"] == clip].itertuples():
                k, kind = int(row.k), str(row.kind)
                order = (k, 0 if kind == "deblur" else 1)
                if order not in frames:
                    source_input = Path(root) / str(row.inputs).split()[0]
                    source_gt = Path(root) / str(row.target)
                    if not (source_input.is_file() and source_gt.is_file()):
                        continue
                    frames[order] = {"label": _label(kind, k), "input": f"{base}/{clip}/input_{k:05d}.png",
                                     "gt": f"{base}/{clip}/gt_{kind}_{k:05d}.png", "out": {}}
                    copies[frames[order]["input"]] = source_input
                    copies[frames[order]["gt"]] = source_gt
                output = Path(root) / str(row.output)
                if output.is_file():
                    asset = f"{base}/{clip}/{method}/{kind}_{k:05d}.png"
                    frames[order]["out"][method] = asset
                    copies[asset] = output
        shown = [frames[key] for key in sorted(frames)]
        if len(shown) >= 3:
            out_clips.append({"name": clip, "frames": shown})
    if not out_clips:
        return None, {}
    methods = [m for m in folders if any(m in f["out"] for c in out_clips for f in c["frames"])]
    return {"id": f"{dataset} · {protocol}", "dataset": dataset, "protocol": protocol, "methods": methods,
            "clips": out_clips}, copies
