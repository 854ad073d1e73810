"""Averages, intervals and paired comparisons of frame scores: the statistics behind every number.

Everything starts from one method's frame scores (``frames.csv``: seed, video, clip, k, kind, ...)
reduced to sums per (seed, unit). The unit is the ``video`` column: the independent source a clip
was cut from (alabench.blur's videos.csv), a source video, or on synth the photo behind the clip
(``photo:<name>``), so that the clips of one source count once and are resampled together, nested
in it. A bootstrap resample draws units with replacement and keeps every clip of a drawn unit.

Conventions, each an average of frame scores:

* ``per_clip``: the mean over each unit's frames, then over units (BIN's per-video averaging). PSNR
  is capped at ``psnr_cap`` first, since a frame identical to its ground truth scores infinity.
* ``per_clip_mse``: as ``per_clip``, but a unit's PSNR comes from its mean squared error over its
  frames. It is finite unless every frame of the unit is exact, so the cap does not set it; the
  headline of the ``mixed`` protocol, where sharp inputs returned as they are score infinity.
  SSIM and LPIPS are bounded and equal ``per_clip``'s.
* ``per_frame``: the mean over all frames.

Kinds: ``deblur``, ``interp``, ``joint`` = (deblur + interp) / 2, the rule of every published joint
number (BIN₄ 32.59 = (32.67 + 32.51) / 2), and ``pooled`` = every frame of both kinds together.

Seeds: a trained method is evaluated once per training seed; a number is the mean over seeds.
Intervals are percentile bootstraps that resample units, and seeds when there are several, with
replacement. The resamples depend only on the seed and the number of units, so every method of a
data set and protocol is resampled alike and a paired difference shares them.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alabench.vocabulary import CONVENTIONS, METRICS
from alabench.vocabulary import FRAME_KINDS as KINDS  # every average's kind -> the frame kinds it reads

BASE_KINDS = ("deblur", "interp", "pooled")  # summed per unit; joint is the mean of deblur and interp
NO_SEED = "-"  # the seed of a method that does not train


def mse_from_psnr(psnr: np.ndarray) -> np.ndarray:
    """Mean squared error (0-255 levels) of frames from their PSNR; ``inf`` (identical) gives 0."""
    return 255.0 ** 2 * np.power(10.0, -np.asarray(psnr, float) / 10.0)


def psnr_from_mse(mse: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0 ** 2 / np.asarray(mse, float))


@dataclass
class UnitScores:
    """One method's frame scores summed per (seed, unit) and base kind: every statistic's input."""

    seeds: list[str]
    units: list[str]
    psnr_cap: float
    sums: dict[tuple[str, str], np.ndarray]  # (base kind, psnr | mse | ssim | lpips) -> (S, U)
    counts: dict[str, np.ndarray]  # base kind -> (S, U) frames

    @classmethod
    def from_frames(cls, frames: pd.DataFrame, psnr_cap: float, units: list[str] | None = None,
                    seeds: list[str] | None = None) -> UnitScores:
        """From a frames table (``seed`` missing or empty = no seed; ``video`` missing = clip); ``units``
        and ``seeds`` fix the layout (a subset of frames laid out like the whole)."""
        frames = frames.copy()
        seed = frames["seed"].astype(object) if "seed" in frames else pd.Series(NO_SEED, index=frames.index)
        frames["seed"] = seed.where(seed.notna() & (seed != ""), NO_SEED).astype(str)
        frames["unit"] = frames["video"].astype(str) if "video" in frames else frames["clip"].astype(str)
        frames["mse"] = mse_from_psnr(frames["psnr"])
        frames["psnr"] = frames["psnr"].clip(upper=psnr_cap)
        seeds = sorted(frames["seed"].unique(), key=_seed_order) if seeds is None else list(seeds)
        units = sorted(frames["unit"].unique()) if units is None else list(units)
        sums, counts = {}, {}
        for base in BASE_KINDS:
            part = frames[frames["kind"].isin(KINDS[base])]
            grouped = part.groupby(["seed", "unit"])
            index = pd.MultiIndex.from_product([seeds, units])
            counts[base] = grouped.size().reindex(index, fill_value=0).to_numpy(float).reshape(len(seeds), len(units))
            for metric in ("psnr", "mse", "ssim", "lpips"):
                sums[(base, metric)] = (grouped[metric].sum().reindex(index, fill_value=0.0)
                                        .to_numpy(float).reshape(len(seeds), len(units)))
        return cls(seeds, units, psnr_cap, sums, counts)

    @property
    def seeded(self) -> bool:
        return self.seeds != [NO_SEED]

    def subset(self, seeds: list[str]) -> UnitScores:
        rows = [self.seeds.index(s) for s in seeds]
        return UnitScores(list(seeds), self.units, self.psnr_cap, {k: v[rows] for k, v in self.sums.items()},
                          {k: v[rows] for k, v in self.counts.items()})

    def values(self, convention: str, base: str, metric: str) -> np.ndarray:
        """(S, U) per-unit means of a per-unit convention; NaN where a unit has no frame of ``base``."""
        counts = self.counts[base]
        with np.errstate(invalid="ignore", divide="ignore"):
            if convention == "per_clip_mse" and metric == "psnr":
                value = np.minimum(psnr_from_mse(self.sums[(base, "mse")] / counts), self.psnr_cap)
            else:
                value = self.sums[(base, metric)] / counts
        return np.where(counts > 0, value, np.nan)


PREFIXED_UNITS = ("photo",)  # unit kinds named by their ids' prefix (synth's ``photo:astronaut``)


def unit_kind(frames: pd.DataFrame) -> str:
    """What the test units of a frames table are: ``photo`` where every id is ``photo:<source>``, else
    ``video`` where a unit holds several clips, else ``clip``. Only the known prefixes count: a video id
    may be a URL (``https://…``, YouTube240), whose scheme is no unit kind."""
    if "video" not in frames:
        return "clip"
    ids = frames["video"].astype(str)
    for kind in PREFIXED_UNITS:
        if len(ids) and ids.str.startswith(f"{kind}:").all():
            return kind
    return "video" if frames.groupby("video")["clip"].nunique().gt(1).any() else "clip"


def _seed_order(seed: str) -> tuple[int, str]:
    return (0, f"{int(seed):09d}") if seed.lstrip("-").isdigit() else (1, seed)


@dataclass(frozen=True)
class Resamples:
    """Bootstrap weights: how often each unit (W, (B, U)) and seed (Z, (B, S)) is drawn per resample."""

    units: np.ndarray
    seeds: np.ndarray

    @classmethod
    def draw(cls, n_units: int, n_seeds: int, count: int, seed: int) -> Resamples:
        rng = np.random.default_rng(seed)
        units = rng.multinomial(n_units, np.full(n_units, 1 / n_units), size=count) if count and n_units else \
            np.zeros((0, n_units))
        seeds = (rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=count) if n_seeds > 1
                 else np.ones((len(units), n_seeds)))
        return cls(units.astype(float), seeds.astype(float))

    @classmethod
    def point(cls, n_units: int, n_seeds: int) -> Resamples:
        """The estimate itself: every unit and seed once."""
        return cls(np.ones((1, n_units)), np.ones((1, n_seeds)))


def _weighted(values: np.ndarray, r: Resamples) -> np.ndarray:
    """Mean of (S, U) ``values`` under each resample's weights, NaN cells left out."""
    present = np.isfinite(values)
    filled = np.where(present, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.einsum("bs,su,bu->b", r.seeds, filled, r.units)
                / np.einsum("bs,su,bu->b", r.seeds, present.astype(float), r.units))


def statistic(scores: UnitScores, convention: str, kind: str, metric: str, r: Resamples) -> np.ndarray:
    """One average (see the module docstring) under each resample of ``r``: shape (B,)."""
    if kind == "joint":
        return (statistic(scores, convention, "deblur", metric, r)
                + statistic(scores, convention, "interp", metric, r)) / 2
    if convention == "per_frame":
        total = np.einsum("bs,su,bu->b", r.seeds, scores.sums[(kind, metric)], r.units)
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / np.einsum("bs,su,bu->b", r.seeds, scores.counts[kind], r.units)
    return _weighted(scores.values(convention, kind, metric), r)


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def interval(boot: np.ndarray, confidence: float) -> list[float | None]:
    boot = boot[np.isfinite(boot)]
    if not len(boot):
        return [None, None]
    tail = (1 - confidence) / 2
    return [_number(q) for q in np.quantile(boot, [tail, 1 - tail])]


def averages(scores: UnitScores, resamples: Resamples, confidence: float) -> dict[str, Any]:
    """{convention: {kind: {metric: {"mean", "ci"[, "seeds", "seed_sd"]}}}}: summary.json's averages."""
    point = Resamples.point(len(scores.units), len(scores.seeds))
    out: dict[str, Any] = {}
    for convention in CONVENTIONS:
        for kind in KINDS:
            for metric in METRICS:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    cell: dict[str, Any] = {"mean": _number(statistic(scores, convention, kind, metric, point)[0]),
                                            "ci": interval(statistic(scores, convention, kind, metric, resamples),
                                                           confidence)}
                    if scores.seeded:
                        per_seed = [statistic(scores.subset([s]), convention, kind, metric,
                                              Resamples.point(len(scores.units), 1))[0] for s in scores.seeds]
                        cell["seeds"] = {s: _number(v) for s, v in zip(scores.seeds, per_seed)}
                        cell["seed_sd"] = _number(float(np.std(per_seed, ddof=1))) if len(per_seed) > 1 else None
                out.setdefault(convention, {}).setdefault(kind, {})[metric] = cell
    return out


# --------------------------------------------------------------------------------------------
# Paired comparisons.


@dataclass(frozen=True)
class Difference:
    """``a - b`` on the units both were scored on, with its paired bootstrap interval."""

    mean: float
    lo: float
    hi: float
    units: int
    seeds: int
    mdd: float = math.nan  # the smallest true difference this comparison detects with POWER (see difference)

    @property
    def separable(self) -> bool:
        """The interval excludes zero: one method is better, whatever the resample."""
        return bool(self.lo > 0 or self.hi < 0)

    def as_dict(self) -> dict[str, Any]:
        return {"mean": _number(self.mean), "ci": [_number(self.lo), _number(self.hi)], "units": self.units,
                "seeds": self.seeds, "mdd": _number(self.mdd)}


def paired(a: UnitScores, b: UnitScores) -> tuple[UnitScores, UnitScores]:
    """``a`` and ``b`` on their common units, paired by seed: common seeds where both have seeds (or
    each one's seeds averaged when they share none), a seedless method paired with every seed."""
    units = sorted(set(a.units) & set(b.units))
    a, b = (_on_units(s, units) for s in (a, b))
    if a.seeded and b.seeded:
        common = [s for s in a.seeds if s in b.seeds]
        if common:
            return a.subset(common), b.subset(common)
        return _seed_mean(a), _seed_mean(b)
    return a, b


def _on_units(scores: UnitScores, units: list[str]) -> UnitScores:
    cols = [scores.units.index(u) for u in units]
    return UnitScores(scores.seeds, units, scores.psnr_cap, {k: v[:, cols] for k, v in scores.sums.items()},
                      {k: v[:, cols] for k, v in scores.counts.items()})


def _seed_mean(scores: UnitScores) -> UnitScores:
    return UnitScores([NO_SEED], scores.units, scores.psnr_cap,
                      {k: v.sum(0, keepdims=True) for k, v in scores.sums.items()},
                      {k: v.sum(0, keepdims=True) for k, v in scores.counts.items()})


def _unit_values(scores: UnitScores, convention: str, kind: str, metric: str) -> np.ndarray:
    if kind == "joint":
        return (_unit_values(scores, convention, "deblur", metric) + _unit_values(scores, convention, "interp",
                                                                                  metric)) / 2
    return scores.values("per_clip" if convention == "per_frame" else convention, kind, metric)


def difference(a: UnitScores, b: UnitScores, convention: str, kind: str, metric: str, bootstrap: int,
               confidence: float, seed: int) -> Difference:
    """Mean of ``a - b`` per (seed, unit) and its percentile interval from resamples shared by both
    (``per_frame`` is compared per unit, as ``per_clip``: a difference needs units)."""
    a, b = paired(a, b)
    diff = _unit_values(a, convention, kind, metric) - _unit_values(b, convention, kind, metric)
    n_seeds, n_units = diff.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = float(_weighted(diff, Resamples.point(n_units, n_seeds))[0]) if n_units else math.nan
        boot = _weighted(diff, Resamples.draw(n_units, n_seeds, bootstrap, seed)) if n_units else np.array([])
        lo, hi = interval(boot, confidence) if n_units else (None, None)
        spread = float(np.nanstd(boot, ddof=1)) if boot.size > 1 else math.nan
    # n_seeds: the seeds the difference spans (a seedless side met by every seed of the other counts them)
    return Difference(mean, math.nan if lo is None else lo, math.nan if hi is None else hi, n_units, n_seeds,
                      minimum_detectable(spread, confidence))


POWER = 0.8  # of the minimum detectable difference: the chance to separate a true difference of that size


def minimum_detectable(standard_error: float, confidence: float, power: float = POWER) -> float:
    """The smallest true difference a two-sided test at ``confidence`` separates from zero with
    probability ``power``, given the difference's standard error (here: the spread of its bootstrap
    means): (z_{1-α/2} + z_power) · se, 2.80 · se at 95 % and 80 %. A measured difference smaller than
    this that does not separate says "no difference this run could see", not "no difference"."""
    z = statistics.NormalDist()
    return (z.inv_cdf(1 - (1 - confidence) / 2) + z.inv_cdf(power)) * standard_error
