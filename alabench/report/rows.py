"""The page's table rows: measured numbers as the template shows them (mean ± half-interval, marks, hover
text), the † rows of the paper beside them, and the smaller tables (seeds, conventions, protocols,
sharp vs blurry inputs, run time). Numbers come from alabench.report.tables and the results as read.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from alabench import paper
from alabench.layout import FRAMES
from alabench.report.results import Inputs, Result
from alabench.report.tables import REFERENCE
from alabench.vocabulary import KINDS, METRIC, METRICS

EMPTY = {"text": "–", "classes": "", "title": "", "tie": False}  # a cell with no measurement
HEADLINE_COLUMNS = [(kind, metric) for kind in ("joint", "deblur", "interp") for metric in ("psnr", "ssim")]
CONVENTION_COLUMNS = [("per_clip", "joint"), ("per_clip_mse", "joint"), ("per_frame", "joint"), ("per_clip", "pooled")]
COMPARISON_CONVENTION = "per_clip_mse"  # one convention for both protocols, and one the cap does not set
SVB_COLUMNS = [("deblur", "psnr"), ("interp", "psnr"), ("joint", "psnr"), ("joint", "ssim"), ("joint", "lpips")]


def fmt(value: float, metric: str) -> str:
    return METRIC[metric].format(value)


def _signed(value: float, metric: str) -> str:
    return f"{value:+.{METRIC[metric].digits}f}"


def cell(row: pd.Series) -> dict[str, Any]:
    """One measured number as the template shows it: mean ± interval half-width, and its marks; the
    hover text gives the interval, the seed spread and both paired differences."""
    metric = row["metric"]
    half = (row["ci_hi"] - row["ci_lo"]) / 2
    text = fmt(row["mean"], metric)
    if np.isfinite(half) and np.isfinite(row["mean"]):
        text += f" ± {fmt(half, metric)}"
    classes = ["best"] if row["best"] else ["tie"] if row["not_separable"] else []
    if not row["addressed"]:
        classes.append("unaddressed")
    title = [f"95% CI [{fmt(row['ci_lo'], metric)}, {fmt(row['ci_hi'], metric)}] over {row['units']} units"]
    if row["seeds"] > 1:
        title.append(f"mean of {row['seeds']} seeds, sd {fmt(row['seed_sd'], metric)}")
    for key, label in (("vs_best", "paired vs best"), ("vs_blurry", f"paired vs {REFERENCE}")):
        if np.isfinite(row[key]):
            title.append(f"{label}: {_signed(row[key], metric)} [{_signed(row[key + '_lo'], metric)}, "
                         f"{_signed(row[key + '_hi'], metric)}]")
    return {"text": text, "classes": " ".join(classes), "tie": bool(row["not_separable"]), "title": "; ".join(title)}


def supplied_notes(inputs: Inputs, protocol: str) -> dict[str, dict[str, str]]:
    """Methods whose outputs were made elsewhere (summary ``outputs_supplied``) under ``protocol``: the
    mark shown beside their name, with each folder's hash (full path and hash on hover)."""
    found: dict[str, list[tuple[str, dict[str, str]]]] = {}
    by_hand = set()
    for r in inputs.results:
        if r.protocol == protocol and r.summary.get("outputs_supplied"):
            found.setdefault(r.method, []).append((r.dataset, r.summary["outputs_supplied"]))
            if r.outside:
                by_hand.add(r.method)
    return {method: {"text": ("scored by hand, not by dvc repro (outside/) · " if method in by_hand else
                              "outputs supplied · ") + ", ".join(f"{d} sha256 {s['sha256'][:12]}" for d, s in folders),
                     "title": "; ".join(f"{d}: {s['path']} sha256 {s['sha256']}" for d, s in folders)}
            for method, folders in found.items()}


def counterpart_note(method: str, paper_rows: tuple[paper.PaperRow, ...]) -> dict[str, str] | None:
    """The note beside a measured row whose method has a † row in the table (BIN₄ [25] beside `bin`); no
    † itself: that mark stays on published numbers."""
    row = next((r for r in paper_rows if paper.MEASURED_AS.get(r.method) == method), None)
    return None if row is None else {"text": f"paper row: {row.method}", "title": (
        f"the paper's row for this method (reported by {row.source}; Adobe240 / YouTube240, other code and data)")}


def grid(table: pd.DataFrame, methods: list[str], columns: list[tuple[str, str, str]],
         paper_rows: tuple[paper.PaperRow, ...], notes: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """The rows of one HTML table: measured rows (with a method's note, if any), then the † rows on their
    own (same columns)."""
    cells = {(r.method, r.kind, r.dataset, r.metric): cell(r) for _, r in table.iterrows()}
    measured = []
    for method in methods:
        if any((method, *c) in cells for c in columns):
            tasks = table.loc[table["method"] == method, "tasks"].iloc[0]
            measured.append({"method": method, "tasks": tasks,
                             "note": (notes or {}).get(method) or counterpart_note(method, paper_rows),
                             "cells": [cells.get((method, *c), EMPTY) for c in columns]})
    published = [{"method": row.method, "reported_by": row.source,
                  "cells": [fmt(v, c[2]) if (v := row.values.get(c)) is not None else "–" for c in columns]}
                 for row in paper_rows if any(c in row.values for c in columns)]
    return {"columns": columns, "measured": measured, "paper": published}


def headline_table(table: pd.DataFrame, methods: list[str], dataset: str, missing: dict[str, str]) -> dict[str, Any]:
    """The compact table read first: joint, deblurring, interpolation PSNR / SSIM of one data set,
    means with their marks (intervals and paired differences on hover); ``missing``: method -> the
    command that makes its result, shown where params ask for a result that is not here."""
    cells = {(r.method, r.kind, r.metric): cell(r) for _, r in table[table["dataset"] == dataset].iterrows()}
    rows = []
    for method in methods:
        if any((method, *c) in cells for c in HEADLINE_COLUMNS):
            rows.append({"method": method, "cells": [cells.get((method, *c), EMPTY) for c in HEADLINE_COLUMNS],
                         "missing": None})
        elif method in missing:
            rows.append({"method": method, "cells": [], "missing": missing[method]})
    return {"dataset": dataset, "columns": HEADLINE_COLUMNS, "rows": rows}


def seed_rows(inputs: Inputs, protocol: str, methods: list[str], datasets: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per trained method and data set: headline PSNRs of every seed, then their mean and spread."""
    rows = []
    for method in methods:
        for dataset in datasets:
            result = inputs.ok(dataset, protocol, method)
            if not (result and result.summary.get("seeds")):
                continue
            for seed in result.summary["seeds"]:
                rows.append({"method": method, "dataset": dataset, "seed": seed,
                             "cells": [fmt(result.cell(k, "psnr").get("seeds", {}).get(seed, math.nan), "psnr")
                                       for k in ("joint", "deblur", "interp")]})
            rows.append({"method": method, "dataset": dataset, "seed": "mean ± sd",
                         "cells": [f"{fmt(result.average(k, 'psnr')[0], 'psnr')} ± "
                                   f"{fmt(result.cell(k, 'psnr').get('seed_sd') or math.nan, 'psnr')}"
                                   for k in ("joint", "deblur", "interp")]})
    return rows


def convention_rows(inputs: Inputs, protocol: str, methods: list[str], datasets: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per method and data set: the joint PSNR under every averaging convention (alabench.stats)."""
    return [{"method": m, "dataset": d,
             "cells": [fmt(r.average(kind, "psnr", convention=c)[0], "psnr") for c, kind in CONVENTION_COLUMNS]}
            for m in methods for d in datasets if (r := inputs.ok(d, protocol, m))]


def _change(a: Result, b: Result, kind: str, metric: str) -> dict[str, str]:
    x = a.average(kind, metric, convention=COMPARISON_CONVENTION)[0]
    y = b.average(kind, metric, convention=COMPARISON_CONVENTION)[0]
    return {"a": fmt(x, metric), "b": fmt(y, metric),
            "delta": _signed(y - x, metric) if np.isfinite(x - y) else "–"}


def protocol_comparison(inputs: Inputs, methods: list[str], datasets: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per method and data set: each ``per_clip_mse`` average under all_blurry, under mixed, and the change."""
    return [{"method": m, "dataset": d, "cells": [_change(a, b, kind, metric) for kind in KINDS for metric in METRICS]}
            for m in methods for d in datasets
            if (a := inputs.ok(d, "all_blurry", m)) and (b := inputs.ok(d, "mixed", m))]


def capped_by_input(result: Result) -> dict[str, int | None]:
    """PSNR frames over the cap among sharp- and blurry-input frames (from frames.csv; None if absent)."""
    path = result.folder / FRAMES
    cap = result.summary.get("psnr_cap")
    if not path.is_file() or cap is None:
        return {"sharp": None, "blurry": None}
    frames = pd.read_csv(path, dtype={"clip": str})
    over = frames["psnr"].astype(float) > float(cap)
    return {name: int((over & (frames["input_blurry"] == flag)).sum()) for name, flag in (("sharp", 0), ("blurry", 1))}


def sharp_vs_blurry(inputs: Inputs, methods: list[str], datasets: tuple[str, ...]) -> list[dict[str, Any]]:
    """Under mixed: averages over the frames whose inputs were all sharp vs those with a blurry input."""
    rows = []
    for method in methods:
        for dataset in datasets:
            result = inputs.ok(dataset, "mixed", method)
            if result is None:
                continue
            capped = capped_by_input(result)
            for subset in ("sharp", "blurry"):
                counts = result.summary.get("by_input", {}).get(subset, {}).get("frames", {})
                cells = [fmt(result.average(kind, metric, subset)[0], metric) for kind, metric in SVB_COLUMNS]
                change = result.summary.get("by_input", {}).get(subset, {}).get("mean_abs_change")
                rows.append({"method": method, "dataset": dataset, "subset": subset,
                             "frames": counts.get("joint", "–"), "capped": capped[subset], "cells": cells,
                             "change": "–" if change is None else f"{change:.2f}"})
    return rows


def runtime_rows(inputs: Inputs, methods: list[str]) -> list[dict[str, Any]]:
    """Per method: tasks, whether it trains, parameters, seconds per output frame (first result found)."""
    rows = []
    for method in methods:
        result = next(r for r in inputs.results if r.method == method)
        s = result.summary
        spf = s.get("seconds_per_frame")
        rows.append({"method": method, "tasks": " + ".join(sorted(result.tasks())),
                     "trains": "outputs supplied" if s.get("outputs_supplied") else "yes" if s.get("trains") else "no",
                     "parameters": f"{int(s['parameters']):,}" if s.get("parameters") is not None else "–",
                     "ms": f"{1000 * spf:.2f}" if spf is not None else "–",
                     "device": str(s.get("device", "–")), "where": f"{result.dataset}/{result.protocol}"})
    return rows


RISING_DB = 0.01  # a last epoch this much above every earlier one: the run stopped while still learning


def trained_note(method: str, summary: dict[str, Any], rise: float | None,
                 paper_rows: tuple[paper.PaperRow, ...]) -> dict[str, str] | None:
    """The note beside a row: its † counterpart, and for a method trained here, what it is beside the
    published model (its share of the published parameters) and whether its validation had stopped
    rising when training ended (``rise``: the last epoch minus the best before it, in dB)."""
    counterpart = counterpart_note(method, paper_rows)
    parts, titles = ([counterpart["text"]], [counterpart["title"]]) if counterpart else ([], [])
    published, own = paper.PUBLISHED_PARAMETERS.get(method), summary.get("parameters")
    if summary.get("trains") and published and own:
        parts.append(f"{100 * own / published:.3g} % of the published size")
        titles.append(f"{int(own):,} parameters here, {published:,} in the authors' model")
    if summary.get("trains") and rise is not None:
        parts.append(f"validation still rising (+{rise:.2f} dB at its last epoch)" if rise > RISING_DB
                     else "validation levelled off")
        titles.append(f"validation joint PSNR at the last epoch minus the best before it: {rise:+.3f} dB "
                      "(mean over seeds)")
    return {"text": " · ".join(parts), "title": "; ".join(titles)} if parts else None
