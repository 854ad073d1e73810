"""The report's "Does the attention do anything?" table: each method's knock-out costs (alabench.probes).

Read from each result's ``probes.json``; the costs shown are those of the result's convention (the
protocol's headline, alabench.vocabulary), PSNR in dB, intact − knocked out, with the paired interval. A row's
verdict: ``used`` when some task's interval lies above zero with a cost of at least ``THRESHOLD``;
``unused`` when every task's interval lies within ±``THRESHOLD``; ``unclear`` otherwise (an interval
too wide to tell, or a knock-out that helps).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from alabench.layout import PROBES
from alabench.report.results import Result
from alabench.vocabulary import INPUTS, KINDS

log = logging.getLogger(__name__)

THRESHOLD = 0.1  # dB: a cost below it is not a use of the part at this scale
# The deblurring cost on sharp / blurry inputs apart (`mixed`): kind -> column label
SPLIT_LABEL = {f"deblur:{name}": f"Deblurring, {name} inputs" for name in INPUTS}
SPLIT = tuple(SPLIT_LABEL)
COLUMNS = ["dataset", "protocol", "method", "knockout", "kind", "convention", "mean", "ci_lo", "ci_hi", "verdict"]


def verdict(costs: Iterable[tuple[float, float, float]]) -> str:
    """``used`` / ``unused`` / ``unclear`` from (mean, lo, hi) costs of the tasks (module docstring)."""
    costs = list(costs)
    if any(lo > 0 and mean >= THRESHOLD for mean, lo, _ in costs):
        return "used"
    if costs and all(-THRESHOLD <= lo and hi <= THRESHOLD for _, lo, hi in costs):
        return "unused"
    return "unclear"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _read_cost(cell: Any) -> tuple[float, float, float]:
    """(mean, lo, hi) of one cost in probes.json (NaN where a value is missing or not a number)."""
    cell = cell or {}
    lo, hi = (list(cell.get("ci") or [None, None]) + [None, None])[:2]
    return _number(cell.get("mean")), _number(lo), _number(hi)


def read_probes(result: Result) -> dict[str, Any] | None:
    """A result's probes.json (None when it has none; a broken one is logged and shown as absent)."""
    path = result.folder / PROBES
    if not path.is_file():
        return None
    try:
        probes = json.loads(path.read_text())
        if not isinstance(probes.get("knockouts"), dict):
            raise ValueError("no 'knockouts' object")
        return probes
    except (OSError, ValueError, AttributeError) as err:
        log.warning("%s: not shown (%s); rerun its evaluate stage", path, err)
        return None


def probe_table(results: Iterable[Result]) -> pd.DataFrame:
    """Long table, one row per (dataset, protocol, method, knock-out, kind) with the cost under each
    result's convention and the row's verdict (from the three kinds of KINDS; under `mixed` the kinds
    of SPLIT add the deblurring cost on sharp and blurry inputs apart)."""
    rows = []
    for result in results:
        probes = read_probes(result) if result.ok else None
        for name, entry in (probes or {}).get("knockouts", {}).items():
            cells = (entry.get("cost") or {}).get(result.convention, {})
            found = [(kind, *_read_cost(cells.get(kind))) for kind in KINDS]
            row_verdict = verdict(c[1:] for c in found) if entry.get("status") == "ok" else "failed"
            found += [(f"deblur:{inputs}", *_read_cost((by_convention or {}).get(result.convention)))
                      for inputs, by_convention in (entry.get("deblur_cost_by_input") or {}).items()]
            rows += [{"dataset": result.dataset, "protocol": result.protocol, "method": result.method,
                      "knockout": name, "kind": kind, "convention": result.convention, "mean": mean,
                      "ci_lo": lo, "ci_hi": hi, "verdict": row_verdict,
                      "description": entry.get("description", ""), "error": entry.get("error")}
                     for kind, mean, lo, hi in found]
    return pd.DataFrame(rows, columns=[*COLUMNS, "description", "error"])


def _db(value: float, digits: int) -> str:
    return f"{round(value, digits) + 0.0:+.{digits}f}"  # + 0.0: no "-0.000"


def _cost(mean: float, lo: float, hi: float) -> dict[str, str]:
    """One cell: the cost and its interval to 0.001 dB, to 0.00001 dB on hover."""
    if not math.isfinite(mean):
        return {"text": "–", "title": "no cost: the knock-out failed or the file holds none"}
    bounds = math.isfinite(lo) and math.isfinite(hi)
    return {"text": _db(mean, 3) + (f" [{_db(lo, 3)}, {_db(hi, 3)}]" if bounds else ""),
            "title": _db(mean, 5) + (f" [{_db(lo, 5)}, {_db(hi, 5)}] dB" if bounds else " dB (no interval)")}


def probe_sections(table: pd.DataFrame, protocol: str, datasets: Iterable[str]) -> list[dict[str, Any]]:
    """The template's tables of one protocol, one per data set that has probes: method × knock-out rows,
    each with its description, the three costs (and, under `mixed`, the deblurring cost on sharp and
    blurry inputs apart) and the verdict."""
    sections = []
    for dataset in datasets:
        part = table[(table["protocol"] == protocol) & (table["dataset"] == dataset)]
        if part.empty:
            continue
        kinds = [*KINDS, *SPLIT] if part["kind"].isin(SPLIT).any() else list(KINDS)
        rows = []
        for (method, knockout), group in part.groupby(["method", "knockout"], sort=False):
            by_kind = group.set_index("kind")
            first = group.iloc[0]
            rows.append({"method": method, "knockout": knockout, "description": first["description"],
                         "verdict": first["verdict"], "error": first["error"],
                         "cells": [_cost(*by_kind.loc[k, ["mean", "ci_lo", "ci_hi"]]) if k in by_kind.index
                                   else _cost(math.nan, math.nan, math.nan) for k in kinds]})
        sections.append({"dataset": dataset, "convention": part["convention"].iloc[0], "kinds": kinds, "rows": rows})
    return sections


def metrics_values(table: pd.DataFrame) -> dict[tuple[str, str, str, str], float]:
    """(dataset, protocol, method, knock-out) -> the joint PSNR cost (dB) under the result's convention,
    for reports/metrics (alabench.dvc_metrics)."""
    return {(r.dataset, r.protocol, r.method, r.knockout): float(r.mean)
            for r in table[table["kind"] == "joint"].itertuples() if math.isfinite(r.mean)}
