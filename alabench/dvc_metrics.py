"""The files DVC reads from the report stage: one small metrics file per evaluation, and the plot data.

`dvc metrics show` prints one row per metrics file and one column per key (the union over all
files), so a single nested file of every method × protocol × task × metric made one row ~160 columns
wide. Here each evaluation (data set, protocol, method) gets ``<folder>/<dataset>/<protocol>/<method>.json``
with the same handful of headline keys, whose names match the training metrics'
(``joint_psnr``, ``deblur_psnr``, ...) so both share columns; `dvc metrics diff` then names the
method that moved in its path. Results folders the report left out (alabench.results_check) are
listed in ``<folder>/skipped.json``, path -> reason, so that `dvc metrics show` names them too. Each
knock-out of a method evaluated with knock-outs (alabench.probes) gets ``<method>.<knock-out>.json``
holding ``cost``: the joint PSNR it costs (intact − knocked out, dB, the protocol's headline
convention; the intervals and the other tasks are in its probes.json and on the page). One file per
knock-out, one short key: four knock-outs as keys of the method's file would widen every row.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from alabench.frames import atomic_dir

# (kind, metric) -> the key written; joint PSNR's paired difference to blurry_input comes after them.
HEADLINE = {("joint", "psnr"): "joint_psnr", ("joint", "ssim"): "joint_ssim", ("joint", "lpips"): "joint_lpips",
            ("deblur", "psnr"): "deblur_psnr", ("interp", "psnr"): "interp_psnr"}
PAIRED = {"vs_blurry": "vs_blurry", "vs_blurry_lo": "vs_blurry_lo", "vs_blurry_hi": "vs_blurry_hi"}
DIGITS = 4   # 0.0001 dB: finer than any difference the bootstrap can resolve, and short columns


def headline(table2: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, float]]:
    """(dataset, protocol, method) -> its headline numbers, from the report's Table 2 (measured rows only;
    a task the method does not address, or a number that is not finite, is left out, not written as 0)."""
    out: dict[tuple[str, str, str], dict[str, float]] = {}
    measured = table2[(table2["source"] == "measured") & table2["addressed"].astype(bool)]
    for row in measured.itertuples():
        key = HEADLINE.get((row.kind, row.metric))
        if key is None:
            continue
        values = out.setdefault((row.dataset, row.protocol, row.method), {})
        if math.isfinite(row.mean):
            values[key] = round(float(row.mean), DIGITS)
        if key == "joint_psnr":
            for column, name in PAIRED.items():
                value = getattr(row, column)
                if value is not None and math.isfinite(value):
                    values[name] = round(float(value), DIGITS)
    return out


SKIPPED = "skipped.json"


def write_metrics(table2: pd.DataFrame, folder: Path, skipped: dict[str, str] | None = None,
                  costs: dict[tuple[str, str, str, str], float] | None = None) -> Path:
    """``folder``/<dataset>/<protocol>/<method>.json for every measured evaluation, <method>.<knock-out>.json
    for each knock-out cost (``costs``: (dataset, protocol, method, knock-out) -> dB), and ``SKIPPED``
    when results were left out (``skipped``: folder or file -> why), swapped in whole so that an
    evaluation no longer measured leaves no stale file behind."""
    with atomic_dir(folder) as tmp:
        if skipped:
            (tmp / SKIPPED).write_text(json.dumps(skipped, indent=2, ensure_ascii=False) + "\n")
        for (dataset, protocol, method), values in sorted(headline(table2).items()):
            target = tmp / dataset / protocol / f"{method}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values, indent=2) + "\n")
        for (dataset, protocol, method, knockout), cost in sorted((costs or {}).items()):
            target = tmp / dataset / protocol / f"{method}.{knockout}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps({"cost": round(cost, DIGITS)}, indent=2) + "\n")
    return folder


def joint_plot(table2: pd.DataFrame) -> pd.DataFrame:
    """One row per measured method, protocol and data set with its joint PSNR / SSIM / LPIPS: the
    data of `dvc plots show`'s bar chart (dvc.yaml), so plots can be compared across commits."""
    joint = table2[(table2["source"] == "measured") & (table2["kind"] == "joint")]
    wide = joint.pivot_table(index=["dataset", "protocol", "method"], columns="metric", values="mean").reset_index()
    wide.insert(0, "run", wide["method"] + " (" + wide["protocol"] + ", " + wide["dataset"] + ")")
    return wide
