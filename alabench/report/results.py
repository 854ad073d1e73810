"""Loading results: every evaluation folder on disk that passes its checks, and what is not there.

Inputs are files only (the stage contract): ``results/<dataset>/<protocol>/<method>/summary.json`` and
``frames.csv`` from the evaluate stages, then the same under ``outside/`` (scored by hand with
`stages.score`). Whatever is missing or fails a check is listed, never raised, so a partial pipeline
still gives a readable page.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from alabench import stats
from alabench.frames import visible_dirs
from alabench.layout import FRAMES, OUTSIDE, RESULTS, Expected, histories, repro, result_dir
from alabench.results_check import RejectedResult, checked_summary
from alabench.vocabulary import TASKS, headline_convention

log = logging.getLogger(__name__)

SHADOWED = "results/ holds a result of the same name, which is shown; rescore this one under another --method"


@dataclass
class Result:
    """One method's evaluation on one data set under one protocol (an evaluate stage's output folder)."""

    dataset: str
    protocol: str
    method: str
    folder: Path
    summary: dict[str, Any]
    convention: str = "per_clip"  # the protocol's headline convention (alabench.vocabulary)
    outside: bool = False  # under outside/: scored by hand with `stages.score`, not by `dvc repro`
    _scores: stats.UnitScores | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.summary.get("status", "ok") == "ok" and bool(self.summary.get("averages"))

    def tasks(self) -> set[str]:
        return set(self.summary.get("tasks") or TASKS)

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
                frames = pd.read_csv(self.folder / FRAMES, dtype={"clip": str, "video": str})
                self._scores = stats.UnitScores.from_frames(frames, float(self.summary.get("psnr_cap", math.inf)))
            except (OSError, ValueError, KeyError) as err:
                log.warning("%s: no paired comparison (%s)", self.folder / FRAMES, err)
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

    def ok(self, dataset: str, protocol: str, method: str) -> Result | None:
        """The result, where it is there and did not fail."""
        result = self.get(dataset, protocol, method)
        return result if result is not None and result.ok else None


def load_results(root: Path, datasets: tuple[str, ...], protocols: tuple[str, ...],
                 headline: Mapping[str, str] | None = None,
                 asked: Collection[tuple[str, str, str]] | None = None) -> Inputs:
    """Read every ``results/<dataset>/<protocol>/<method>/summary.json`` under ``root``, then the same
    under ``outside/``, each result averaged under its protocol's headline convention (``headline``:
    report.headline, see :func:`alabench.vocabulary.headline_convention`). Only folders that pass
    :func:`alabench.results_check.checked_summary` (``asked``: the evaluations params.yaml asks for,
    None to accept any) are read; the others are listed in ``skipped``, a missing one in ``missing``:
    never raises."""
    found = Inputs()
    for dataset in datasets:
        for protocol in protocols:
            convention = headline_convention(protocol, headline)
            for base in (RESULTS, OUTSIDE):  # results/ first: a name in both shows its pipeline result
                folder = result_dir(dataset, protocol, "", root, base)  # the protocol's folder: every method
                methods = visible_dirs(folder) if folder.is_dir() else []  # never .<method>.*.tmp leftovers
                if not methods and base == RESULTS:
                    found.missing.append(f"{RESULTS}/{dataset}/{protocol}/: no method evaluated yet")
                for method_dir in methods:
                    try:
                        summary = checked_summary(root, method_dir, dataset, protocol,
                                                  asked if base == RESULTS else None)
                        if found.get(dataset, protocol, method_dir.name):
                            raise RejectedResult(method_dir.relative_to(root).as_posix(), SHADOWED)
                    except RejectedResult as err:
                        found.skipped.append(err)
                        continue
                    found.results.append(Result(dataset, protocol, method_dir.name, method_dir, summary,
                                                convention, base == OUTSIDE))
    return found


def not_in_report(inputs: Inputs, expected: list[Expected]) -> list[str]:
    """What params ask for that has no usable result here, each with the command that would make it."""
    lines = []
    left_out = {Path(s.path).parts[1:4] for s in inputs.skipped if s.path.startswith(f"{RESULTS}/")}
    for e in expected:
        result = inputs.get(e.dataset, e.protocol, e.method)
        if result is None:
            why = "left out (see Results left out)" if (e.dataset, e.protocol, e.method) in left_out else "not run"
            lines.append(f"{e.method} on {e.dataset} / {e.protocol}: {why} — {e.command}")
            continue
        have = {int(s) for s in result.summary.get("seeds", [])}
        lacking = tuple(s for s in e.seeds if s not in have)
        if result.ok and lacking:
            lines.append(f"{e.method} on {e.dataset} / {e.protocol}: seed(s) {list(lacking)} not evaluated — "
                         + repro(*e.train_stages(lacking), e.stage))
    return lines


def last_epoch_rise(root: Path, dataset: str, method: str) -> float | None:
    """Validation joint PSNR at the last epoch minus the best of the epochs before it, averaged over the
    seeds of ``method`` trained on ``dataset`` (training/<dataset>/<method>/seed<k>/history.csv): above
    zero, the run stopped while its validation was still rising. None without two epochs to compare."""
    rises = []
    for name, _, history in histories(dataset, root):
        if name != method:
            continue
        table = pd.read_csv(history) if history.stat().st_size else pd.DataFrame()
        joint = table["joint_psnr"].dropna() if "joint_psnr" in table else pd.Series(dtype=float)
        if len(joint) >= 2:
            rises.append(float(joint.iloc[-1] - joint.iloc[:-1].max()))
    return sum(rises) / len(rises) if rises else None
