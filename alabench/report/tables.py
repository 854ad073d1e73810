"""Tables and paired statistics: the long tables behind Table 2 / Table 3 and table2.csv, and who beats whom.

Every number of a protocol is an average under its headline convention (alabench.vocabulary) with the
bootstrap interval the evaluate stage wrote. Rankings are paired: a number is the best of its column,
or not separable from the best when the paired bootstrap interval of its difference to the best, taken
over the same test units (and seeds), contains zero. Every method also carries its paired difference
to ``blurry_input``. Only methods that address a column's tasks are ranked in it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from alabench import paper, stats
from alabench.report.results import Inputs, Result, compare
from alabench.vocabulary import KINDS, METRIC, METRICS, addresses

REFERENCE = "blurry_input"  # the method every other one is compared with: "does it do anything at all"
PAIRED_COLUMNS = ["seeds", "seed_sd", "units", "vs_best", "vs_best_lo", "vs_best_hi",
                  "vs_blurry", "vs_blurry_lo", "vs_blurry_hi"]
MEASURED_COLUMNS = ["protocol", "dataset", "method", "tasks", "kind", "metric", "mean", "ci_lo", "ci_hi", "addressed",
                    "convention", "seeds", "seed_sd", "units"]
# table2.csv / table3.csv column order: where a number comes from first, so measured and † rows never read alike.
CSV_COLUMNS = ["source", "convention", "protocol", "dataset", "method", "reported_by", "tasks", "kind", "metric",
               "mean", "ci_lo", "ci_hi", "best", "not_separable", "addressed", *PAIRED_COLUMNS]


def _paired(diff: stats.Difference | None) -> tuple[float, float, float]:
    return (diff.mean, diff.lo, diff.hi) if diff else (math.nan, math.nan, math.nan)


def _measured_rows(result: Result, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per (kind, metric) of one result: mean, interval, seed spread, units."""
    rows = []
    for kind in kinds:
        for metric in METRICS:
            mean, lo, hi = result.average(kind, metric)
            cell = result.cell(kind, metric)
            rows.append({"protocol": result.protocol, "dataset": result.dataset, "method": result.method,
                         "tasks": " ".join(sorted(result.tasks())), "kind": kind, "metric": metric,
                         "mean": mean, "ci_lo": lo, "ci_hi": hi,
                         "addressed": addresses(result.tasks(), kind), "convention": result.convention,
                         "seeds": len(cell.get("seeds") or {}) or 1,
                         "seed_sd": math.nan if cell.get("seed_sd") is None else cell["seed_sd"],
                         "units": result.summary.get("units", {}).get("count", result.summary.get("clips"))})
    return rows


def measured_table(inputs: Inputs, protocol: str, methods: list[str], datasets: tuple[str, ...],
                   kinds: tuple[str, ...] = KINDS) -> pd.DataFrame:
    """Long table, one row per (method, dataset, kind, metric) under ``protocol``: the mean over seeds
    with its interval and seed spread, the paired difference to the best of the column (which sets
    ``not_separable``) and to ``blurry_input``, among the methods that address that task."""
    found = {(m, d): r for m in methods for d in datasets if (r := inputs.ok(d, protocol, m))}
    table = pd.DataFrame([row for r in found.values() for row in _measured_rows(r, kinds)], columns=MEASURED_COLUMNS)
    table["best"] = False
    table["not_separable"] = False
    for column in PAIRED_COLUMNS[3:]:
        table[column] = math.nan
    for (dataset, kind, metric), group in table.groupby(["dataset", "kind", "metric"]):
        _rank_column(table, group, {m: r for (m, d), r in found.items() if d == dataset}, kind, metric)
    return table


def _rank_column(table: pd.DataFrame, group: pd.DataFrame, found: dict[str, Result], kind: str, metric: str) -> None:
    """Marks the best of one column and fills every row's paired differences to it and to the reference."""
    ranked = group[group["addressed"] & np.isfinite(group["mean"])]
    if ranked.empty:
        return
    best = ranked["mean"].idxmax() if METRIC[metric].higher_is_better else ranked["mean"].idxmin()
    table.loc[best, "best"] = True
    best_result, reference = found[table.loc[best, "method"]], found.get(REFERENCE)
    for index in group.index:
        result = found[table.loc[index, "method"]]
        if index in ranked.index and index != best:
            vs_best = compare(result, best_result, kind, metric)
            table.loc[index, ["vs_best", "vs_best_lo", "vs_best_hi"]] = _paired(vs_best)
            table.loc[index, "not_separable"] = bool(vs_best and not vs_best.separable)
        if reference is not None and result is not reference:
            table.loc[index, ["vs_blurry", "vs_blurry_lo", "vs_blurry_hi"]] = _paired(
                compare(result, reference, kind, metric))


def _beats_cell(a: Result, b: Result, kind: str, metric: str) -> dict[str, str]:
    """Row ``a`` minus column ``b``, paired: ``win`` / ``loss`` when the interval excludes zero, else ``tie``."""
    diff = compare(a, b, kind, metric) if a is not b else None
    if diff is None or not math.isfinite(diff.mean):
        return {"text": "", "mark": "self" if a is b else "", "title": ""}
    better = 1 if METRIC[metric].higher_is_better else -1
    mark = "tie" if not diff.separable else "win" if diff.mean * better > 0 else "loss"
    digits = METRIC[metric].digits
    return {"text": f"{diff.mean:+.{digits}f}", "mark": mark,
            "title": f"{a.method} − {b.method}: {diff.mean:+.{digits}f} [{diff.lo:+.{digits}f}, "
                     f"{diff.hi:+.{digits}f}] paired over {diff.units} units × {diff.seeds} seed(s)"}


def beats_matrix(inputs: Inputs, protocol: str, dataset: str, methods: list[str], kind: str,
                 metric: str = "psnr") -> dict[str, Any] | None:
    """Who beats whom on one column: row minus column, paired; ``win`` / ``loss`` when the interval
    excludes zero, ``tie`` otherwise. Only methods that address ``kind``."""
    results = [r for m in methods if (r := inputs.ok(dataset, protocol, m)) and addresses(r.tasks(), kind)]
    if len(results) < 2:
        return None
    rows = []
    for a in results:
        cells = [_beats_cell(a, b, kind, metric) for b in results]
        rows.append({"method": a.method, "cells": cells,
                     "wins": sum(c["mark"] == "win" for c in cells), "losses": sum(c["mark"] == "loss" for c in cells)})
    return {"dataset": dataset, "kind": kind, "metric": metric, "methods": [r.method for r in results],
            "rows": rows, "convention": results[0].convention}


def paper_table(rows: tuple[paper.PaperRow, ...], table: str) -> pd.DataFrame:
    """A published table in the same long layout, ``source`` = paper (the † rows)."""
    return pd.DataFrame([{"table": table, "method": row.method, "reported_by": row.source, "dataset": dataset,
                          "kind": kind, "metric": metric, "mean": value}
                         for row in rows for (kind, dataset, metric), value in row.values.items()])


def csv_table(measured: list[pd.DataFrame], published: tuple[paper.PaperRow, ...], name: str) -> pd.DataFrame:
    """table2.csv / table3.csv: every protocol's measured rows, then the paper's, in CSV_COLUMNS order."""
    table = pd.concat([*measured, paper_table(published, name).assign(source="paper")], ignore_index=True)
    table["source"] = table["source"].fillna("measured")
    table["convention"] = np.where(table["source"] == "measured", table["convention"], "as published")
    return table[CSV_COLUMNS]
