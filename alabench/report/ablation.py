"""Table 3's comparisons with their power: each pair of the ablation, its paired difference and the
smallest difference the run could have detected.

A comparison that does not separate is only informative next to its *minimum detectable difference*
(``alabench.stats.minimum_detectable``: 80 % power at the run's units × seeds): "no difference above
0.05 dB" is a finding, "no difference" alone is not. The attention-free ``unet``, where it was run,
joins the pairs as the "neither" row the paper's Table 3 lacks.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from alabench import stats
from alabench.vocabulary import KINDS

NEITHER = "unet"  # ALANet without the attention: every variant is also compared with it


class Results(Protocol):
    def get(self, dataset: str, protocol: str, method: str) -> Any: ...


def pairs(ablation: list[str], found: list[str]) -> list[tuple[str, str]]:
    """(a, b) pairs to report as a − b: each later ablation row against each earlier one (the paper's
    order: self, cross, both), then each against ``unet`` where it was run."""
    out = [(a, b) for i, a in enumerate(ablation) for b in ablation[:i]]
    if NEITHER in found and NEITHER not in ablation:
        out += [(a, NEITHER) for a in ablation]
    return out


def _text(diff: stats.Difference | None) -> dict[str, str]:
    if diff is None or not math.isfinite(diff.mean):
        return {"text": "–", "mdd": "–", "mark": "", "title": ""}
    return {"text": f"{diff.mean:+.3f} [{diff.lo:+.3f}, {diff.hi:+.3f}]", "mdd": f"{diff.mdd:.3f}",
            "mark": "separates" if diff.separable else "",
            "title": f"paired over {diff.units} units × {diff.seeds} seed(s); minimum detectable difference at "
                     f"{stats.POWER:.0%} power: {diff.mdd:.3f} dB"}


def comparison_rows(results: Results, compare: Any, protocol: str, dataset: str, ablation: list[str],
                    found: list[str]) -> list[dict[str, Any]]:
    """One row per pair: the PSNR difference a − b per task with its interval and MDD (``compare`` is
    the report's paired comparison of two results)."""
    rows = []
    for a, b in pairs(ablation, found):
        ra, rb = results.get(dataset, protocol, a), results.get(dataset, protocol, b)
        if not (ra and rb and ra.ok and rb.ok):
            continue
        rows.append({"pair": f"{a} − {b}", "dataset": dataset,
                     "cells": [_text(compare(ra, rb, kind, "psnr")) for kind in KINDS]})
    return rows
