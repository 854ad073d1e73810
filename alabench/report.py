"""The HTML report: results on disk -> tables (pandas) and figures (matplotlib) -> one jinja2 page.

Inputs are files only (the stage contract): ``results/<dataset>/<protocol>/<method>/summary.json``,
``frames.csv`` and ``samples/samples.csv`` from the evaluate stage, ``training/<dataset>/<method>/
history.csv`` from the train stage. Whatever is missing or failed is named on the page instead of
stopping the report, so a partial pipeline still gives a readable page.

Every table of a protocol uses the averaging convention ``report.headline`` names for it
(``alabench.stats``: ``per_clip``, BIN's mean over each video's frames then over videos, for
all_blurry; ``per_clip_mse`` for mixed, where sharp inputs returned exactly would otherwise score the
PSNR cap) with the bootstrap interval the evaluate stage wrote. Rankings are paired: a number is bold
when it is the best of its column, and marked not separable from the best when the paired bootstrap
interval of its difference to the best, taken over the same test units (and seeds), contains zero.
Every method also carries its paired difference to ``blurry_input``. Methods evaluated with
knock-outs get the "Does the attention do anything?" table (alabench.report_probes).
"""

from __future__ import annotations

import datetime
import shutil
import io
import logging
import math
import os
import platform
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import yaml

from alabench import paper, stats
from alabench.config import Params, ReportParams
from alabench.dvc_metrics import joint_plot, write_metrics
from alabench.frames import atomic_dir, atomic_write_text, read_png, visible_dirs
from alabench.layout import OUTSIDE
from alabench.report_ablation import comparison_rows
from alabench.report_probes import THRESHOLD, metrics_values, probe_sections, probe_table
from alabench.results_check import RejectedResult, checked_summary
from alabench.sources.extract import flagged_notes
from alabench.tracking import dvc_experiment, git_commit
from alabench.viewer import read_samples, viewer_set

log = logging.getLogger(__name__)

CONVENTION = "per_clip"
KINDS = ("deblur", "interp", "joint")
METRICS = ("psnr", "ssim", "lpips")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False}
KIND_LABEL = {"deblur": "Deblurring", "interp": "Interpolation", "joint": "Joint deblurring and interpolation"}
METRIC_LABEL = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS"}
DIGITS = {"psnr": 2, "ssim": 4, "lpips": 4}
# The task a method must address for its number in a column to be ranked (a method states its tasks).
NEEDS = {"deblur": {"deblur"}, "interp": {"interpolate"}, "joint": {"deblur", "interpolate"}}
TEMPLATES = Path(__file__).resolve().parent.parent / "reports" / "templates"
SHADOWED = "results/ holds a result of the same name, which is shown; rescore this one under another --method"


@dataclass
class Result:
    """One method's evaluation on one data set under one protocol (an evaluate stage's output folder)."""

    dataset: str
    protocol: str
    method: str
    folder: Path
    summary: dict[str, Any]
    convention: str = CONVENTION
    outside: bool = False  # under outside/: scored by hand with `stages.score`, not by `dvc repro`
    _scores: stats.UnitScores | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.summary.get("status", "ok") == "ok" and bool(self.summary.get("averages"))

    def tasks(self) -> set[str]:
        return set(self.summary.get("tasks") or ("deblur", "interpolate"))

    def average(self, kind: str, metric: str, subset: str | None = None,
                convention: str | None = None) -> tuple[float, float, float]:
        """(mean, ci_lo, ci_hi) of an average (this result's convention unless given), NaN where absent;
        ``subset``: sharp / blurry."""
        cell = self.cell(kind, metric, subset, convention)
        ci = cell.get("ci") or [None, None]
        return tuple(math.nan if v is None else float(v) for v in (cell.get("mean"), *ci))  # type: ignore[return-value]

    def cell(self, kind: str, metric: str, subset: str | None = None, convention: str | None = None) -> dict[str, Any]:
        """summary.json's entry for one average (this result's convention unless given; {} where absent)."""
        averages = self.summary.get("by_input", {}).get(subset, {}) if subset else self.summary.get("averages", {})
        return averages.get(convention or self.convention, {}).get(kind, {}).get(metric, {})

    def scores(self) -> stats.UnitScores | None:
        """Per-(seed, unit) scores from frames.csv, the basis of paired comparisons (None if unreadable)."""
        if self._scores is None:
            try:
                frames = pd.read_csv(self.folder / "frames.csv", dtype={"clip": str, "video": str})
                self._scores = stats.UnitScores.from_frames(frames, float(self.summary.get("psnr_cap", math.inf)))
            except (OSError, ValueError, KeyError) as err:
                log.warning("%s: no paired comparison (%s)", self.folder / "frames.csv", err)
                return None
        return self._scores


def compare(a: Result, b: Result, kind: str, metric: str) -> stats.Difference | None:
    """``a - b`` paired on the units (and seeds) both were scored on, under ``a``'s convention and
    its evaluation's bootstrap settings; None if either has no frame scores."""
    sa, sb = a.scores(), b.scores()
    if sa is None or sb is None:
        return None
    boot = a.summary.get("bootstrap", {})
    return stats.difference(sa, sb, a.convention, kind, metric, int(boot.get("resamples", 1000)),
                            float(boot.get("confidence", 0.95)), int(boot.get("seed", 0)))


@dataclass
class Inputs:
    """Everything the report read, and what it looked for but did not find."""

    results: list[Result] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[RejectedResult] = field(default_factory=list)  # folders read that failed a check

    def methods(self) -> list[str]:
        """Methods found, those that do not train first (the baselines), then by name: no name is special."""
        trains = {r.method: bool(r.summary.get("trains")) for r in self.results}
        return sorted(trains, key=lambda m: (trains[m], m))

    def get(self, dataset: str, protocol: str, method: str) -> Result | None:
        return next((r for r in self.results if (r.dataset, r.protocol, r.method) == (dataset, protocol, method)), None)


def load_results(root: Path, datasets: tuple[str, ...], protocols: tuple[str, ...],
                 headline: dict[str, str] | None = None,
                 asked: Collection[tuple[str, str, str]] | None = None) -> Inputs:
    """Read every ``results/<dataset>/<protocol>/<method>/summary.json`` under ``root``, then the same
    under ``outside/``, each result averaged under its protocol's ``headline`` convention (default
    per_clip). Only folders that pass :func:`alabench.results_check.checked_summary` (``asked``: the
    evaluations params.yaml asks for, None to accept any) are read; the others are listed in
    ``skipped``, a missing one in ``missing``: never raises."""
    found = Inputs()
    for dataset in datasets:
        for protocol in protocols:
            for base in ("results", OUTSIDE):  # results/ first: a name in both shows its pipeline result
                folder = root / base / dataset / protocol
                methods = visible_dirs(folder) if folder.is_dir() else []  # never .<method>.*.tmp leftovers
                if not methods and base == "results":
                    found.missing.append(f"results/{dataset}/{protocol}/: no method evaluated yet")
                for method_dir in methods:
                    try:
                        summary = checked_summary(root, method_dir, dataset, protocol,
                                                  asked if base == "results" else None)
                        if found.get(dataset, protocol, method_dir.name):
                            raise RejectedResult(method_dir.relative_to(root).as_posix(), SHADOWED)
                    except RejectedResult as err:
                        found.skipped.append(err)
                        continue
                    found.results.append(Result(dataset, protocol, method_dir.name, method_dir, summary,
                                                (headline or {}).get(protocol, CONVENTION), base == OUTSIDE))
    return found


# --------------------------------------------------------------------------------------------
# Tables.


REFERENCE = "blurry_input"  # the method every other one is compared with: "does it do anything at all"
PAIRED_COLUMNS = ["seeds", "seed_sd", "units", "vs_best", "vs_best_lo", "vs_best_hi",
                  "vs_blurry", "vs_blurry_lo", "vs_blurry_hi"]


def _paired(diff: stats.Difference | None) -> tuple[float, float, float]:
    return (diff.mean, diff.lo, diff.hi) if diff else (math.nan, math.nan, math.nan)


def measured_table(inputs: Inputs, protocol: str, methods: list[str], datasets: tuple[str, ...],
                   kinds: tuple[str, ...] = KINDS) -> pd.DataFrame:
    """Long table, one row per (method, dataset, kind, metric) under ``protocol``: the mean over seeds
    with its interval and seed spread, the paired difference to the best of the column (which sets
    ``not_separable``) and to ``blurry_input``, among the methods that address that task."""
    rows, found = [], {}
    for method in methods:
        for dataset in datasets:
            result = inputs.get(dataset, protocol, method)
            if result is None or not result.ok:
                continue
            found[(method, dataset)] = result
            for kind in kinds:
                for metric in METRICS:
                    mean, lo, hi = result.average(kind, metric)
                    cell = result.cell(kind, metric)
                    rows.append({"protocol": protocol, "dataset": dataset, "method": method,
                                 "tasks": " ".join(sorted(result.tasks())), "kind": kind, "metric": metric,
                                 "mean": mean, "ci_lo": lo, "ci_hi": hi,
                                 "addressed": NEEDS[kind] <= result.tasks(), "convention": result.convention,
                                 "seeds": len(cell.get("seeds") or {}) or 1,
                                 "seed_sd": math.nan if cell.get("seed_sd") is None else cell["seed_sd"],
                                 "units": result.summary.get("units", {}).get("count", result.summary.get("clips"))})
    table = pd.DataFrame(rows, columns=["protocol", "dataset", "method", "tasks", "kind", "metric", "mean",
                                        "ci_lo", "ci_hi", "addressed", "convention", "seeds", "seed_sd", "units"])
    table["best"] = False
    table["not_separable"] = False
    for column in PAIRED_COLUMNS[3:]:
        table[column] = math.nan
    for (dataset, kind, metric), group in table.groupby(["dataset", "kind", "metric"]):
        ranked = group[group["addressed"] & np.isfinite(group["mean"])]
        if ranked.empty:
            continue
        best = ranked["mean"].idxmax() if HIGHER_IS_BETTER[metric] else ranked["mean"].idxmin()
        table.loc[best, "best"] = True
        best_result = found[(table.loc[best, "method"], dataset)]
        reference = found.get((REFERENCE, dataset))
        for index in group.index:
            result = found[(table.loc[index, "method"], dataset)]
            if index in ranked.index and index != best:
                vs_best = compare(result, best_result, kind, metric)
                table.loc[index, ["vs_best", "vs_best_lo", "vs_best_hi"]] = _paired(vs_best)
                table.loc[index, "not_separable"] = bool(vs_best and not vs_best.separable)
            if reference is not None and result is not reference:
                table.loc[index, ["vs_blurry", "vs_blurry_lo", "vs_blurry_hi"]] = _paired(
                    compare(result, reference, kind, metric))
    return table


def beats_matrix(inputs: Inputs, protocol: str, dataset: str, methods: list[str], kind: str,
                 metric: str = "psnr") -> dict[str, Any] | None:
    """Who beats whom on one column: row minus column, paired; ``win`` / ``loss`` when the interval
    excludes zero, ``tie`` otherwise. Only methods that address ``kind``."""
    results = [r for m in methods if (r := inputs.get(dataset, protocol, m)) and r.ok and NEEDS[kind] <= r.tasks()]
    if len(results) < 2:
        return None
    better = 1 if HIGHER_IS_BETTER[metric] else -1
    rows = []
    for a in results:
        cells = []
        for b in results:
            diff = compare(a, b, kind, metric) if a is not b else None
            if diff is None or not math.isfinite(diff.mean):
                cells.append({"text": "", "mark": "self" if a is b else "", "title": ""})
                continue
            mark = "tie" if not diff.separable else "win" if diff.mean * better > 0 else "loss"
            digits = DIGITS[metric]
            cells.append({"text": f"{diff.mean:+.{digits}f}", "mark": mark,
                          "title": f"{a.method} − {b.method}: {diff.mean:+.{digits}f} "
                                   f"[{diff.lo:+.{digits}f}, {diff.hi:+.{digits}f}] paired over "
                                   f"{diff.units} units × {diff.seeds} seed(s)"})
        rows.append({"method": a.method, "cells": cells,
                     "wins": sum(c["mark"] == "win" for c in cells), "losses": sum(c["mark"] == "loss" for c in cells)})
    return {"dataset": dataset, "kind": kind, "metric": metric, "methods": [r.method for r in results],
            "rows": rows, "convention": results[0].convention}


def paper_table(rows: tuple[paper.PaperRow, ...], table: str) -> pd.DataFrame:
    """A published table in the same long layout, ``source`` = paper (the † rows)."""
    return pd.DataFrame([{"table": table, "method": row.method, "reported_by": row.source, "dataset": dataset,
                          "kind": kind, "metric": metric, "mean": value}
                         for row in rows for (kind, dataset, metric), value in row.values.items()])


def _fmt(value: float, metric: str) -> str:
    return "–" if not np.isfinite(value) else f"{value:.{DIGITS[metric]}f}"


def _cell(row: pd.Series) -> dict[str, Any]:
    """One measured number as the template shows it: mean ± interval half-width, and its marks; the
    hover text gives the interval, the seed spread and both paired differences."""
    metric = row["metric"]
    half = (row["ci_hi"] - row["ci_lo"]) / 2
    text = _fmt(row["mean"], metric)
    if np.isfinite(half) and np.isfinite(row["mean"]):
        text += f" ± {_fmt(half, metric)}"
    classes = ["best"] if row["best"] else ["tie"] if row["not_separable"] else []
    if not row["addressed"]:
        classes.append("unaddressed")
    title = [f"95% CI [{_fmt(row['ci_lo'], metric)}, {_fmt(row['ci_hi'], metric)}] over {row['units']} units"]
    if row["seeds"] > 1:
        title.append(f"mean of {row['seeds']} seeds, sd {_fmt(row['seed_sd'], metric)}")
    for key, label in (("vs_best", "paired vs best"), ("vs_blurry", f"paired vs {REFERENCE}")):
        if np.isfinite(row[key]):
            title.append(f"{label}: {row[key]:+.{DIGITS[metric]}f} [{row[key + '_lo']:+.{DIGITS[metric]}f}, "
                         f"{row[key + '_hi']:+.{DIGITS[metric]}f}]")
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


EMPTY = {"text": "–", "classes": "", "title": "", "tie": False}  # a cell with no measurement


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
    cells = {(r.method, r.kind, r.dataset, r.metric): _cell(r) for _, r in table.iterrows()}
    measured = []
    for method in methods:
        if any((method, *c) in cells for c in columns):
            tasks = table.loc[table["method"] == method, "tasks"].iloc[0]
            measured.append({"method": method, "tasks": tasks,
                             "note": (notes or {}).get(method) or counterpart_note(method, paper_rows),
                             "cells": [cells.get((method, *c), EMPTY)
                                       for c in columns]})
    published = [{"method": row.method, "reported_by": row.source,
                  "cells": [_fmt(v, c[2]) if (v := row.values.get(c)) is not None else "–" for c in columns]}
                 for row in paper_rows if any(c in row.values for c in columns)]
    return {"columns": columns, "measured": measured, "paper": published}


COMPARISON_CONVENTION = "per_clip_mse"  # one convention for both protocols, and one the cap does not set


def protocol_comparison(inputs: Inputs, methods: list[str], datasets: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per method and data set: each ``per_clip_mse`` average under all_blurry, under mixed, and the change."""
    rows = []
    for method in methods:
        for dataset in datasets:
            a, b = inputs.get(dataset, "all_blurry", method), inputs.get(dataset, "mixed", method)
            if not (a and b and a.ok and b.ok):
                continue
            cells = []
            for kind in KINDS:
                for metric in METRICS:
                    x = a.average(kind, metric, convention=COMPARISON_CONVENTION)[0]
                    y = b.average(kind, metric, convention=COMPARISON_CONVENTION)[0]
                    cells.append({"a": _fmt(x, metric), "b": _fmt(y, metric),
                                  "delta": f"{y - x:+.{DIGITS[metric]}f}" if np.isfinite(x - y) else "–"})
            rows.append({"method": method, "dataset": dataset, "cells": cells})
    return rows


def capped_by_input(result: Result) -> dict[str, int | None]:
    """PSNR frames over the cap among sharp- and blurry-input frames (from frames.csv; None if absent)."""
    path = result.folder / "frames.csv"
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
            result = inputs.get(dataset, "mixed", method)
            if not (result and result.ok):
                continue
            capped = capped_by_input(result)
            for subset in ("sharp", "blurry"):
                counts = result.summary.get("by_input", {}).get(subset, {}).get("frames", {})
                cells = [_fmt(result.average(kind, metric, subset)[0], metric)
                         for kind, metric in SVB_COLUMNS]
                rows.append({"method": method, "dataset": dataset, "subset": subset,
                             "frames": counts.get("joint", "–"), "capped": capped[subset], "cells": cells})
    return rows


SVB_COLUMNS = [("deblur", "psnr"), ("interp", "psnr"), ("joint", "psnr"), ("joint", "ssim"), ("joint", "lpips")]


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


# --------------------------------------------------------------------------------------------
# Figures (matplotlib, Agg: no display needed).


def _png(fig: Any) -> bytes:
    """A figure as PNG bytes (an asset beside the page, loaded lazily)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _image(root: Path, rel: str) -> np.ndarray | None:
    path = root / rel
    return read_png(path) if path.is_file() else None


def strip_figure(inputs: Inputs, root: Path, dataset: str, protocol: str, methods: list[str], zoom: int) -> bytes | None:
    """Figure 4 style: inputs with the missing frame faded, one row per method (deblurred, interpolated,
    zoomed crop), the ground truth last. The crop is where the methods' outputs disagree most with the GT."""
    plt = _pyplot()
    found = [(m, r) for m in methods if (r := inputs.get(dataset, protocol, m)) and r.ok]
    tables = {m: read_samples(r.folder) for m, r in found}
    found = [(m, r) for m, r in found if not tables[m].empty]
    if not found:
        return None
    first = tables[found[0][0]]
    clip, k = first.iloc[0]["clip"], int(first.iloc[0]["k"])

    def pick(table: pd.DataFrame, kind: str) -> pd.Series | None:
        hit = table[(table["clip"] == clip) & (table["k"] == k) & (table["kind"] == kind)]
        return hit.iloc[0] if len(hit) else None

    d0, i0 = pick(first, "deblur"), pick(first, "interp")
    if d0 is None or i0 is None:
        return None
    gt = [_image(root, d0["target"]), _image(root, i0["target"])]
    names = str(i0["inputs"]).split()
    ins = [_image(root, n) for n in names]
    if any(x is None for x in gt + ins) or len(ins) != 2:
        return None
    rows: list[tuple[str, list[np.ndarray]]] = []
    faded = (0.35 * (ins[0].astype(float) + ins[1]) / 2 + 0.65 * 255).astype(np.uint8)
    rows.append((f"input {k}, missing, input {k + 1}", [ins[0], faded, ins[1]]))
    outputs = {}
    for method, _ in found:
        d, i = pick(tables[method], "deblur"), pick(tables[method], "interp")
        if d is None or i is None:
            continue
        images = [_image(root, d["output"]), _image(root, i["output"])]
        if all(x is not None for x in images):
            outputs[method] = images
    error = sum((np.abs(o[1].astype(float) - gt[1]).mean(-1) for o in outputs.values()), np.zeros(gt[1].shape[:2]))
    h, w = error.shape
    size = min(zoom, h, w)
    y, x = np.unravel_index(np.argmax(_box(error, size)), _box(error, size).shape)
    crop = (slice(y, y + size), slice(x, x + size))
    for method, images in outputs.items():
        rows.append((method, [images[0], images[1], images[1][crop]]))
    rows.append(("ground truth", [gt[0], gt[1], gt[1][crop]]))
    titles = [f"frame {k} (deblurred)", f"frame {k}½ (interpolated)", f"zoom {size}×{size} px at ({x}, {y})"]
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 2.2 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(images):
                ax.imshow(images[c], interpolation="nearest")
            if r < 2:  # the inputs' titles above row 0, the outputs' above row 1
                ax.set_title(titles[c] if r else ["input (blurry or sharp)", "missing frame", "next input"][c],
                             fontsize=8)
        axes[r][0].text(-0.05, 0.5, label, transform=axes[r][0].transAxes, rotation=90, ha="right",
                        va="center", fontsize=8)
    fig.suptitle(f"{dataset} / {protocol}, clip {clip}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # keep 0.4 in on top for the title
    return _png(fig)


def _box(error: np.ndarray, size: int) -> np.ndarray:
    """Sum of ``error`` over every size x size window (top-left corners), via an integral image."""
    s = np.pad(error.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]


def residue_figure(inputs: Inputs, root: Path, dataset: str, protocol: str, methods: list[str],
                   vmax: float) -> bytes | None:
    """Figure 5 style: each method's interpolated frame above its |output - GT| (mean over RGB, 0-255
    levels) on one colour scale with its bar."""
    plt = _pyplot()
    shown = []
    for method in methods:
        result = inputs.get(dataset, protocol, method)
        if not (result and result.ok):
            continue
        table = read_samples(result.folder)
        hit = table[table["kind"] == "interp"]
        if hit.empty:
            continue
        out, gt = _image(root, hit.iloc[0]["output"]), _image(root, hit.iloc[0]["target"])
        if out is not None and gt is not None and out.shape == gt.shape:
            shown.append((method, out, np.abs(out.astype(float) - gt.astype(float)).mean(-1)))
    if not shown:
        return None
    fig, axes = plt.subplots(2, len(shown), figsize=(3.2 * len(shown) + 1, 5), squeeze=False)
    image = None
    for c, (method, out, residue) in enumerate(shown):
        axes[0][c].imshow(out)
        axes[0][c].set_title(f"{method}\nmean |error| {residue.mean():.2f}", fontsize=8)
        image = axes[1][c].imshow(residue, cmap="inferno", vmin=0, vmax=vmax)
        for ax in (axes[0][c], axes[1][c]):
            ax.axis("off")
    fig.colorbar(image, ax=list(axes[1]), label="|output − GT| (0–255)", fraction=0.05)
    fig.suptitle(f"{dataset} / {protocol}: interpolated frame and residue", fontsize=10)
    return _png(fig)


def per_clip_figure(inputs: Inputs, dataset: str, protocol: str, methods: list[str]) -> bytes | None:
    """Joint PSNR per test unit ((deblur + interp) / 2 under the protocol's convention, mean over
    seeds), one line per method: the values every paired comparison is made of."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    drawn = ""
    for method in methods:
        result = inputs.get(dataset, protocol, method)
        scores = result.scores() if result and result.ok else None
        if result is None or scores is None:
            continue
        joint = (scores.values(result.convention, "deblur", "psnr")
                 + scores.values(result.convention, "interp", "psnr")) / 2
        ax.plot(range(len(scores.units)), np.nanmean(joint, axis=0), marker="o", linestyle=":", label=method)
        ax.set_xticks(range(len(scores.units)), scores.units, rotation=30, ha="right", fontsize=7)
        drawn = result.convention
    if not drawn:
        plt.close(fig)
        return None
    ax.set_ylabel("joint PSNR (dB)")
    ax.set_title(f"{dataset} / {protocol}: joint PSNR per test unit ({drawn})", fontsize=10)
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    return _png(fig)


def _run_label(history: Path) -> str:
    """``<method> <seed>`` from training/<dataset>/<method>/seed<k>/history.csv."""
    return f"{history.parent.parent.name} {history.parent.name}"


def training_figure(root: Path, dataset: str) -> bytes | None:
    """Training loss and validation joint PSNR per epoch, every trained run of ``dataset`` whose
    checkpoint exists here (the histories are committed, the checkpoints may not have been made)."""
    plt = _pyplot()
    histories = [h for h in sorted((root / "training" / dataset).glob("*/seed*/history.csv"))
                 if (root / "checkpoints" / dataset / h.parent.parent.name / h.parent.name / "model.pt").is_file()]
    if not histories:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for path in histories:
        history = pd.read_csv(path)
        if {"epoch", "train_loss"} <= set(history.columns):
            left.plot(history["epoch"], history["train_loss"], marker=".", label=_run_label(path))
        if {"epoch", "joint_psnr"} <= set(history.columns):
            right.plot(history["epoch"], history["joint_psnr"], marker=".", label=_run_label(path))
    left.set(xlabel="epoch", ylabel="training loss")
    right.set(xlabel="epoch", ylabel="validation joint PSNR (dB)")
    left.legend(fontsize=7)
    fig.suptitle(f"{dataset}: training", fontsize=10)
    fig.tight_layout()
    return _png(fig)


# --------------------------------------------------------------------------------------------
# Provenance and the page.


def provenance(root: Path, params: ReportParams) -> dict[str, Any]:
    """Where the numbers came from: commit, dvc.lock hashes of results / training / checkpoints, params."""
    hashes = []
    lock = root / "dvc.lock"
    if lock.is_file():
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
        for name, stage in sorted(stages.items()):
            for out in stage.get("outs", []):
                path = str(out.get("path", ""))
                if path.startswith(("results/", "training/", "checkpoints/")) and (root / path).exists():
                    hashes.append({"stage": name, "path": out["path"], "md5": out.get("md5", "–")})
    raw = yaml.safe_load((root / "params.yaml").read_text()) if (root / "params.yaml").is_file() else {}
    used = {key: raw.get(key) for key in ("report", "evaluate", "blur") if key in raw}
    return {
        "commit": git_commit(), "hashes": hashes, "params": yaml.safe_dump(used, sort_keys=False),
        "experiment": dvc_experiment(root / "params.yaml"),   # None outside `dvc exp run`
        "machine": f"{platform.node()} · {platform.platform()} · {os.cpu_count()} CPUs · Python {platform.python_version()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


@dataclass(frozen=True)
class Expected:
    """One evaluation that params.yaml asks for: the result folder it fills and the stage that fills it."""

    dataset: str
    protocol: str
    method: str
    stage: str
    seeds: tuple[int, ...] = ()

    @property
    def command(self) -> str:
        return f"dvc repro {self.stage}"


def expected_results(params: Params) -> list[Expected]:
    """Every (data set, protocol, method) the evaluate stages of ``params`` write, within what the
    report shows: the report names each one that has no result, with the command that makes it."""
    shown = set(params.report.datasets), set(params.report.protocols)
    found = []
    for protocol in params.evaluate.protocols:
        for method in params.evaluate.methods:
            found += [Expected(d, protocol, method, f"evaluate@{method}-{d}-{protocol}") for d in params.blur.datasets]
        for method in params.train.methods:
            found += [Expected(d, protocol, method, f"evaluate_trained@{method}-{d}-{protocol}", params.train.seeds)
                      for d in params.train.datasets]
        for i, pair in enumerate(params.evaluate.transfer):
            found += [Expected(pair.test, protocol, method, f"evaluate_transfer@{method}-pair{i}-{protocol}",
                               params.train.seeds) for method in params.train.methods]
        for i, cascade in enumerate(params.evaluate.cascades):
            found += [Expected(d, protocol, cascade.name, f"evaluate_cascade@cascade{i}-{d}-{protocol}",
                               params.train.seeds) for d in params.train.datasets]
    found += [Expected(f.dataset, f.protocol, f.method, f"evaluate_folder@{key}")
              for key, f in params.evaluate.folders.items()]
    return [e for e in found if e.dataset in shown[0] and e.protocol in shown[1]]


def not_in_report(inputs: Inputs, expected: list[Expected]) -> list[str]:
    """What params ask for that has no usable result here, each with the command that would make it."""
    lines = []
    left_out = {Path(s.path).parts[1:4] for s in inputs.skipped if s.path.startswith("results/")}
    for e in expected:
        result = inputs.get(e.dataset, e.protocol, e.method)
        if result is None:
            why = "left out (see Results left out)" if (e.dataset, e.protocol, e.method) in left_out else "not run"
            lines.append(f"{e.method} on {e.dataset} / {e.protocol}: {why} — {e.command}")
            continue
        have = {int(s) for s in result.summary.get("seeds", [])}
        lacking = [s for s in e.seeds if s not in have]
        if result.ok and lacking:
            lines.append(f"{e.method} on {e.dataset} / {e.protocol}: seed(s) {lacking} not evaluated — "
                         + " && ".join([*(f"dvc repro train@{e.method}-{e.dataset}-{s}" for s in lacking), e.command]))
    return lines


HEADLINE_COLUMNS = [(kind, metric) for kind in ("joint", "deblur", "interp") for metric in ("psnr", "ssim")]


def headline(table: pd.DataFrame, methods: list[str], dataset: str, expected: dict[str, Expected]) -> dict[str, Any]:
    """The compact table read first: joint, deblurring, interpolation PSNR / SSIM of one data set,
    means with their marks (intervals and paired differences on hover); "not run" where params ask
    for a result that is not here."""
    cells = {(r.method, r.kind, r.metric): _cell(r) for _, r in table[table["dataset"] == dataset].iterrows()}
    rows = []
    for method in methods:
        if any((method, *c) in cells for c in HEADLINE_COLUMNS):
            rows.append({"method": method, "cells": [cells.get((method, *c), EMPTY) for c in HEADLINE_COLUMNS],
                         "missing": None})
        elif method in expected:
            rows.append({"method": method, "cells": [], "missing": expected[method].command})
    return {"dataset": dataset, "columns": HEADLINE_COLUMNS, "rows": rows}


def seed_rows(inputs: Inputs, protocol: str, methods: list[str], datasets: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per trained method and data set: headline PSNRs of every seed, then their mean and spread."""
    rows = []
    for method in methods:
        for dataset in datasets:
            result = inputs.get(dataset, protocol, method)
            if not (result and result.ok and result.summary.get("seeds")):
                continue
            for seed in result.summary["seeds"]:
                rows.append({"method": method, "dataset": dataset, "seed": seed,
                             "cells": [_fmt(result.cell(k, "psnr").get("seeds", {}).get(seed, math.nan), "psnr")
                                       for k in ("joint", "deblur", "interp")]})
            rows.append({"method": method, "dataset": dataset, "seed": "mean ± sd",
                         "cells": [f"{_fmt(result.average(k, 'psnr')[0], 'psnr')} ± "
                                   f"{_fmt(result.cell(k, 'psnr').get('seed_sd') or math.nan, 'psnr')}"
                                   for k in ("joint", "deblur", "interp")]})
    return rows


CONVENTION_COLUMNS = [("per_clip", "joint"), ("per_clip_mse", "joint"), ("per_frame", "joint"), ("per_clip", "pooled")]


def convention_rows(inputs: Inputs, protocol: str, methods: list[str], datasets: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per method and data set: the joint PSNR under every averaging convention (alabench.stats)."""
    return [{"method": m, "dataset": d,
             "cells": [_fmt(r.average(kind, "psnr", convention=c)[0], "psnr") for c, kind in CONVENTION_COLUMNS]}
            for m in methods for d in datasets if (r := inputs.get(d, protocol, m)) and r.ok]


@dataclass
class Report:
    html: str
    table2: pd.DataFrame
    table3: pd.DataFrame
    assets: dict[str, bytes | Path] = field(default_factory=dict)  # path under the page's folder -> content or source
    skipped: dict[str, str] = field(default_factory=dict)  # folder or file left out -> why
    probes: pd.DataFrame | None = None  # knock-out costs (alabench.report_probes.probe_table)


def _size(content: bytes | Path) -> int:
    return len(content) if isinstance(content, bytes) else Path(content).stat().st_size


def build_report(root: Path, params: ReportParams, expected: list[Expected] = (),  # type: ignore[assignment]
                 complete: bool = False) -> Report:
    """Read ``root``'s results and training history; return the page, both tables and the page's
    assets (figures, viewer frames). Never raises on partial results: whatever ``expected`` names
    that is not here is listed with its command. ``complete``: ``expected`` is everything params.yaml
    asks for (the stage), so a results/ folder it does not name is left out; results failing a check
    (alabench.results_check) are always left out, and listed."""
    asked = {(e.dataset, e.protocol, e.method) for e in expected} if complete else None
    inputs = load_results(root, params.datasets, params.protocols, dict(params.headline), asked)
    methods = list(dict.fromkeys([*inputs.methods(), *(e.method for e in expected)]))
    found_methods = inputs.methods()
    ablation = [m for m in params.ablation if m in found_methods]
    columns = [(kind, dataset, metric) for kind in KINDS for dataset in params.datasets for metric in METRICS]
    columns3 = [(kind, dataset, metric) for kind in ("deblur", "interp") for dataset in params.datasets
                for metric in METRICS]
    assets: dict[str, bytes | Path] = {}
    t2, t3, protocols, viewers = [], [], [], []
    probes = probe_table(r for r in inputs.results if not r.outside)
    for protocol in params.protocols:
        measured = measured_table(inputs, protocol, found_methods, params.datasets)
        ablated = measured_table(inputs, protocol, ablation, params.datasets, ("deblur", "interp"))
        t2.append(measured)
        t3.append(ablated)
        figures = []
        for dataset in params.datasets:
            for title, png in ((f"Figure 4-style strip, {dataset}",
                                strip_figure(inputs, root, dataset, protocol, found_methods, params.zoom)),
                               (f"Figure 5-style residues, {dataset}",
                                residue_figure(inputs, root, dataset, protocol, ablation or found_methods,
                                               params.residue_max)),
                               (f"Joint PSNR per test unit, {dataset}",
                                per_clip_figure(inputs, dataset, protocol, found_methods))):
                if png:
                    path = f"assets/figures/{len(assets):02d}-{dataset}-{protocol}.png"
                    assets[path] = png
                    figures.append((title, path))
            viewer, copies = viewer_set(root, dataset, protocol, {r.method: r.folder for r in inputs.results
                                                                 if r.ok and (r.dataset, r.protocol) == (dataset, protocol)})
            if viewer:
                viewers.append(viewer)
                assets.update(copies)
        wanted = {e.method: e for e in expected if e.protocol == protocol}
        notes = supplied_notes(inputs, protocol)
        protocols.append({
            "name": protocol, "convention": params.headline[protocol],
            "headline": [headline(measured, methods, d, {m: e for m, e in wanted.items() if e.dataset == d})
                         for d in params.datasets],
            "table2": grid(measured, found_methods, columns, paper.TABLE2, notes),
            "table3": grid(ablated, ablation, columns3, paper.TABLE3, notes),
            "matrices": [m for d in params.datasets for kind in KINDS
                         if (m := beats_matrix(inputs, protocol, d, found_methods, kind))],
            "matrices3": [m for d in params.datasets for kind in ("deblur", "interp")
                          if (m := beats_matrix(inputs, protocol, d, ablation, kind))],
            "power3": [row for d in params.datasets
                       for row in comparison_rows(inputs, compare, protocol, d, ablation, found_methods)],
            "seeds": seed_rows(inputs, protocol, found_methods, params.datasets),
            "conventions": convention_rows(inputs, protocol, found_methods, params.datasets),
            "probes": probe_sections(probes, protocol, params.datasets),
            "figures": figures})
    for dataset in params.datasets:
        if png := training_figure(root, dataset):
            path = f"assets/figures/training-{dataset}.png"
            assets[path] = png
    failed = [{"where": f"{r.dataset}/{r.protocol}/{r.method}", "error": r.summary.get("error") or "no averages"}
              for r in inputs.results if not r.ok]
    missing = [*inputs.missing, *not_in_report(inputs, list(expected))]
    missing += [f"Table 3: no result for ablation method {m}" for m in params.ablation if m not in found_methods]
    context = {
        "datasets": params.datasets, "protocols": protocols, "kind_label": KIND_LABEL, "metric_label": METRIC_LABEL,
        "comparison": protocol_comparison(inputs, found_methods, params.datasets) if {"all_blurry", "mixed"} <= set(
            params.protocols) else [],
        "sharp_vs_blurry": sharp_vs_blurry(inputs, found_methods, params.datasets) if "mixed" in params.protocols else [],
        "svb_columns": SVB_COLUMNS, "kinds": KINDS, "metrics": METRICS,
        "runtime": runtime_rows(inputs, found_methods), "failed": failed, "missing": missing,
        "skipped": inputs.skipped,
        "flagged": flagged_notes(root, params.datasets),
        "training": [(d, f"assets/figures/training-{d}.png") for d in params.datasets
                     if f"assets/figures/training-{d}.png" in assets],
        "paper_table2": grid(pd.DataFrame(columns=["method"]), [], [(k, d, m) for k in KINDS for d in paper.DATASETS
                                                                      for m in ("psnr", "ssim")], paper.TABLE2),
        "paper_table3": grid(pd.DataFrame(columns=["method"]), [], [(k, "adobe240", m) for k in ("deblur", "interp")
                                                                      for m in ("psnr", "ssim")], paper.TABLE3),
        "provenance": provenance(root, params), "headline": dict(params.headline), "reference": REFERENCE,
        "comparison_convention": COMPARISON_CONVENTION, "viewers": viewers,
        "convention_columns": CONVENTION_COLUMNS, "probe_threshold": THRESHOLD,
        "asset_count": len(assets), "asset_bytes": sum(_size(c) for c in assets.values()),
    }
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    html = env.get_template("index.html.j2").render(**context)
    table2 = pd.concat([*t2, paper_table(paper.TABLE2, "2").assign(source="paper")], ignore_index=True)
    table3 = pd.concat([*t3, paper_table(paper.TABLE3, "3").assign(source="paper")], ignore_index=True)
    for table in (table2, table3):
        table["source"] = table["source"].fillna("measured")
        table["convention"] = np.where(table["source"] == "measured", table["convention"], "as published")
    return Report(html, _tidy(table2), _tidy(table3), assets, {s.path: s.reason for s in inputs.skipped}, probes)


def _tidy(table: pd.DataFrame) -> pd.DataFrame:
    """CSV column order: where a number comes from first, so measured and † rows never read alike."""
    first = ["source", "convention", "protocol", "dataset", "method", "reported_by", "tasks", "kind", "metric",
             "mean", "ci_lo", "ci_hi", "best", "not_separable", "addressed", *PAIRED_COLUMNS]
    return table[first]


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """``out_dir``/assets/ (swapped in whole), then index.html, table2.csv, table3.csv, joint.csv and the
    metrics/ folder (alabench.dvc_metrics), each written atomically: a report that fails to render leaves
    the previous one in place. Returns the files, then the metrics folder."""
    paths = [out_dir / name for name in ("index.html", "table2.csv", "table3.csv", "joint.csv")]
    with atomic_dir(out_dir / "assets") as tmp:
        for name, content in report.assets.items():
            target = tmp / Path(name).relative_to("assets")
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copyfile(content, target)
    atomic_write_text(paths[0], report.html)
    atomic_write_text(paths[1], report.table2.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(paths[2], report.table3.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(paths[3], joint_plot(report.table2).to_csv(index=False, float_format="%.6g"))
    costs = metrics_values(report.probes) if report.probes is not None else {}
    return [*paths, write_metrics(report.table2, out_dir / "metrics", report.skipped, costs)]
