"""alabench.stats against references it does not share code with: exact enumeration of every bootstrap
resample, scipy's bootstrap, a coverage simulation, and averages computed by hand.

The point of each test is to fail for a *kind* of break: any wrong quantile or resampling (the exact
and scipy references, the coverage), any wrong averaging convention (the hand examples, which
include capped frames that are not exact and units with more deblurred than interpolated frames),
and any wrong pairing of seeds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from alabench import stats
from alabench.summary import COLUMNS

CAP = 50.0


def frames(rows: list[tuple[object, str, str, list[float]]]) -> pd.DataFrame:
    """frames.csv rows from (seed, unit, kind, [PSNR of frame k = 0, 1, ...]); SSIM and LPIPS are
    PSNR / 100 and 1 - PSNR / 100 (finite stand-ins for the bounded metrics)."""
    out = []
    for seed, unit, kind, values in rows:
        for k, value in enumerate(values):
            bounded = min(value, 99.0) / 100
            out.append((seed, unit, unit, k, kind, 1, value, bounded, 1 - bounded))
    return pd.DataFrame(out, columns=COLUMNS)


def unit_frames(values: np.ndarray, seed: object = "") -> pd.DataFrame:
    """One deblurred and one interpolated frame per unit, both at the unit's value."""
    return frames([(seed, f"u{i:02d}", kind, [v]) for i, v in enumerate(values) for kind in ("deblur", "interp")])


def scores(table: pd.DataFrame) -> stats.UnitScores:
    return stats.UnitScores.from_frames(table, CAP)


# ------------------------------------------------------------------------------------------------
# Intervals: exact enumeration, scipy, coverage.

GAINS = np.array([0.0, 3.0, 12.0, 18.0, 24.0])  # 5 units: 5^5 = 3125 equally likely resamples
RESAMPLES = 200_000


def exact_percentiles(values: np.ndarray, probabilities: tuple[float, ...]) -> list[float]:
    """The percentile bootstrap's limits with infinitely many resamples: the quantiles of the mean over
    every one of the n^n index tuples. Each limit is checked to sit clear of a step of the distribution
    (6 sd of a quantile from RESAMPLES draws), so a finite bootstrap must land on it exactly."""
    n = len(values)
    means = np.array([values[list(idx)].mean() for idx in itertools.product(range(n), repeat=n)])
    levels, counts = np.unique(means.round(9), return_counts=True)
    cdf = np.cumsum(counts) / len(means)
    out = []
    for p in probabilities:
        i = int(np.searchsorted(cdf, p))
        margin = 6 * math.sqrt(p * (1 - p) / RESAMPLES)
        assert cdf[i - 1] < p - margin and cdf[i] > p + margin, "pick values whose quantile is not near a step"
        out.append(float(levels[i]))
    return out


@pytest.mark.parametrize("confidence", [0.95, 0.90])
def test_the_paired_interval_equals_exact_enumeration_of_every_resample(confidence):
    tail = (1 - confidence) / 2
    lo, hi = exact_percentiles(GAINS, (tail, 1 - tail))
    base = np.array([21.0, 14.0, 17.5, 23.0, 11.0])  # unrelated per-unit levels: pairing removes them
    diff = stats.difference(scores(unit_frames(base + GAINS)), scores(unit_frames(base)), "per_clip", "joint",
                            "psnr", RESAMPLES, confidence, 0)
    assert diff.mean == pytest.approx(GAINS.mean())
    assert (diff.lo, diff.hi) == pytest.approx((lo, hi), abs=1e-9)
    # the reference tells the levels apart: a wrong tail (alpha instead of alpha/2) lands elsewhere
    wrong = exact_percentiles(GAINS, (2 * tail, 1 - 2 * tail))
    assert wrong[0] > lo + 0.5 and wrong[1] < hi - 0.5


def test_summary_intervals_equal_exact_enumeration_for_every_convention():
    """summary.json's ``ci`` (stats.averages) under per_clip, per_clip_mse and per_frame: with one frame
    per unit and kind and no cap reached, all three are the mean over units, so all share the exact limits."""
    values = 20.0 + GAINS
    lo, hi = exact_percentiles(values, (0.025, 0.975))
    cells = stats.averages(scores(unit_frames(values)), stats.Resamples.draw(5, 1, RESAMPLES, 3), 0.95)
    for convention in ("per_clip", "per_frame"):
        for kind in ("deblur", "interp", "joint", "pooled"):
            assert cells[convention][kind]["psnr"]["ci"] == pytest.approx([lo, hi], abs=1e-9), (convention, kind)
    assert cells["per_clip"]["joint"]["ssim"]["ci"] == pytest.approx([lo / 100, hi / 100], abs=1e-9)
    mse = stats.mse_from_psnr(values)  # per_clip_mse: the same resamples of the PSNR of each unit's own MSE
    assert cells["per_clip_mse"]["deblur"]["psnr"]["ci"] == pytest.approx(
        exact_percentiles(stats.psnr_from_mse(mse), (0.025, 0.975)), abs=1e-9)


def test_the_paired_interval_matches_scipy_bootstrap_far_within_the_alpha_over_two_effect():
    rng = np.random.default_rng(11)
    b = rng.normal(30.0, 4.0, 12)
    a = b + rng.normal(0.3, 0.5, 12)
    diff = stats.difference(scores(unit_frames(a)), scores(unit_frames(b)), "per_clip", "deblur", "psnr",
                            40_000, 0.95, 0)
    reference = scipy.stats.bootstrap((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), paired=True,
                                      vectorized=True, n_resamples=40_000, confidence_level=0.95,
                                      method="percentile", rng=np.random.default_rng(5)).confidence_interval
    se = np.std(a - b, ddof=0) / math.sqrt(len(a))  # the bootstrap's standard error of the mean
    # Monte Carlo error of each limit: ~0.014 se per 40 000 resamples; taking alpha instead of alpha/2
    # moves each limit by (1.96 - 1.645) se = 0.31 se: the tolerance is a quarter of that
    tolerance = 0.08 * se
    assert diff.lo == pytest.approx(reference.low, abs=tolerance)
    assert diff.hi == pytest.approx(reference.high, abs=tolerance)
    assert abs((diff.hi - diff.lo) - 2 * 1.645 * se) > 3 * tolerance  # a 90 % interval would not pass


def coverage(confidence: float, label: float | None = None, datasets: int = 2000, units: int = 100) -> float:
    """Share of ``datasets`` samples (``units`` normal values each, true mean 0) whose percentile interval,
    from alabench's resamples and ``stats.interval`` at ``label`` (default ``confidence``), covers 0.
    Vectorised: four bootstrap draws of 1000 resamples, each shared by a quarter of the samples."""
    rng = np.random.default_rng(2024)
    data = rng.normal(0.0, 1.0, (datasets, units))
    covered = 0
    for part, chunk in enumerate(np.array_split(data, 4)):
        weights = stats.Resamples.draw(units, 1, 1000, part).units  # (B, U) counts of each unit
        boot = chunk @ weights.T / units  # (samples, B) resampled means
        for row in boot:
            lo, hi = stats.interval(row, label or confidence)
            covered += lo <= 0.0 <= hi
    return covered / datasets


def binomial_band(rate: float, n: int) -> tuple[float, float]:
    """Where the observed coverage of ``n`` intervals lies (4 sd), widened by the percentile bootstrap's
    known small-sample undercoverage: its limits are z * sd * sqrt((n - 1) / n), ~0.4 points at 100 units."""
    sd = math.sqrt(rate * (1 - rate) / n)
    return rate - 0.006 - 4 * sd, rate + 4 * sd


def test_intervals_cover_the_true_mean_at_their_nominal_rate():
    for confidence in (0.95, 0.80):
        low, high = binomial_band(confidence, 2000)
        assert low <= coverage(confidence) <= high, confidence
    # the check can fail: a 90 % interval labelled 95 % covers ~90 %, outside the 95 % band
    low, _ = binomial_band(0.95, 2000)
    assert coverage(0.90, label=None) < low


def test_the_interval_is_the_two_tailed_percentile_of_the_resamples():
    boot = np.arange(1001.0)  # the 2.5th and 97.5th percentiles of 0..1000 are 25 and 975
    assert stats.interval(boot, 0.95) == [25.0, 975.0]
    assert stats.interval(boot, 0.80) == [100.0, 900.0]
    assert stats.interval(np.array([np.nan, np.inf]), 0.95) == [None, None]


@pytest.mark.parametrize("lo, hi, separable", [(0.1, 0.5, True), (-0.5, -0.1, True), (-0.1, 0.5, False),
                                               (0.0, 0.5, False), (-0.5, 0.0, False)])
def test_separable_means_the_interval_excludes_zero(lo, hi, separable):
    assert stats.Difference((lo + hi) / 2, lo, hi, 8, 1).separable is separable


def test_separable_on_data_follows_the_exact_limits():
    """Gains shifted so that the exact lower limit is +0.5, then -0.5: separable, then not (the mean is
    well above zero both times)."""
    base = np.full(5, 30.0)
    lo = exact_percentiles(GAINS, (0.025,))[0]
    for shift, separable in ((0.5, True), (-0.5, False)):
        gains = GAINS - lo + shift
        diff = stats.difference(scores(unit_frames(base + gains)), scores(unit_frames(base)), "per_clip",
                                "deblur", "psnr", RESAMPLES, 0.95, 0)
        assert diff.lo == pytest.approx(shift) and diff.mean > 3 and diff.separable is separable


# ------------------------------------------------------------------------------------------------
# Averaging conventions, by hand.

INF = math.inf


def psnr_of_mean_mse(psnrs: list[float]) -> float:
    """The PSNR of the mean squared error of frames given by their (uncapped) PSNRs."""
    mse = [0.0 if p == INF else 255.0 ** 2 * 10 ** (-p / 10) for p in psnrs]
    mean = sum(mse) / len(mse)
    return INF if mean == 0 else 10 * math.log10(255.0 ** 2 / mean)


# Three units. u2 has an exact frame (inf: capped to 50) and a finite frame above the cap (60 dB): not
# exact, so per_clip_mse must use its true MSE, not the cap's. u3 is exact everywhere. Units have more
# deblurred than interpolated frames, so pooling both kinds differs from (deblur + interp) / 2.
HAND = [("", "u1", "deblur", [30.0, 36.0]), ("", "u1", "interp", [27.0]),
        ("", "u2", "deblur", [INF, 40.0]), ("", "u2", "interp", [60.0, 20.0]),
        ("", "u3", "deblur", [INF, INF, INF]), ("", "u3", "interp", [INF])]


def test_every_convention_against_a_hand_computed_example():
    cells = stats.averages(scores(frames(HAND)), stats.Resamples.draw(3, 1, 10, 0), 0.95)
    psnr = {c: {k: cells[c][k]["psnr"]["mean"] for k in stats.KINDS} for c in stats.CONVENTIONS}
    # per_clip: each unit's mean of capped frames, then the mean over units
    deblur = ((30 + 36) / 2 + (50 + 40) / 2 + 50) / 3  # 42.6667
    interp = (27 + (50 + 20) / 2 + 50) / 3  # 37.3333
    assert psnr["per_clip"]["deblur"] == pytest.approx(deblur)
    assert psnr["per_clip"]["interp"] == pytest.approx(interp)
    assert psnr["per_clip"]["joint"] == pytest.approx((deblur + interp) / 2)
    assert psnr["per_clip"]["pooled"] == pytest.approx(((30 + 36 + 27) / 3 + (50 + 40 + 50 + 20) / 4 + 50) / 3)
    # per_frame: the mean over all (capped) frames
    assert psnr["per_frame"]["deblur"] == pytest.approx((30 + 36 + 50 + 40 + 150) / 7)
    assert psnr["per_frame"]["interp"] == pytest.approx((27 + 50 + 20 + 50) / 4)
    assert psnr["per_frame"]["joint"] == pytest.approx(((30 + 36 + 50 + 40 + 150) / 7 + (27 + 50 + 20 + 50) / 4) / 2)
    assert psnr["per_frame"]["pooled"] == pytest.approx((30 + 36 + 50 + 40 + 150 + 27 + 50 + 20 + 50) / 11)
    # per_clip_mse: each unit's PSNR from its own (uncapped) MSE; the cap only for an all-exact unit
    mse_deblur = (psnr_of_mean_mse([30, 36]) + psnr_of_mean_mse([INF, 40]) + CAP) / 3
    mse_interp = (27 + psnr_of_mean_mse([60, 20]) + CAP) / 3
    assert psnr_of_mean_mse([INF, 40]) == pytest.approx(40 + 10 * math.log10(2))  # 43.01 dB: not the cap's 40.04
    assert psnr["per_clip_mse"]["deblur"] == pytest.approx(mse_deblur, abs=1e-6)
    assert psnr["per_clip_mse"]["interp"] == pytest.approx(mse_interp, abs=1e-6)
    assert psnr["per_clip_mse"]["joint"] == pytest.approx((mse_deblur + mse_interp) / 2, abs=1e-6)
    assert psnr["per_clip_mse"]["pooled"] == pytest.approx(
        (psnr_of_mean_mse([30, 36, 27]) + psnr_of_mean_mse([INF, 40, 60, 20]) + CAP) / 3, abs=1e-6)
    # SSIM and LPIPS are bounded: per_clip_mse is per_clip for them
    for metric in ("ssim", "lpips"):
        for kind in stats.KINDS:
            assert cells["per_clip_mse"][kind][metric]["mean"] == cells["per_clip"][kind][metric]["mean"]
    ssim_deblur = ((0.30 + 0.36) / 2 + (0.99 + 0.40) / 2 + 0.99) / 3
    assert cells["per_clip"]["deblur"]["ssim"]["mean"] == pytest.approx(ssim_deblur)


def test_the_cap_sets_no_unit_that_is_not_exact():
    """A frame above the cap in a unit that is not exact moves per_clip_mse as its true MSE does."""
    def headline(top: float) -> float:
        table = frames([("", "u", "deblur", [top, 30.0]), ("", "u", "interp", [30.0])])
        cells = stats.averages(scores(table), stats.Resamples.draw(1, 1, 10, 0), 0.95)
        return cells["per_clip_mse"]["deblur"]["psnr"]["mean"]

    assert headline(60.0) == pytest.approx(psnr_of_mean_mse([60.0, 30.0]), abs=1e-6)
    assert headline(INF) == pytest.approx(30 + 10 * math.log10(2), abs=1e-6)
    assert headline(60.0) < headline(80.0) < headline(INF)  # the capped PSNR (50) would give all three alike


def test_the_paired_joint_is_the_mean_of_deblur_and_interp_per_unit():
    a = scores(frames(HAND[:4]))
    b = scores(frames([("", u, kind, [20.0] * n) for u, kind, n in
                       (("u1", "deblur", 2), ("u1", "interp", 1), ("u2", "deblur", 2), ("u2", "interp", 2))]))
    # u1: ((30 + 36) / 2 - 20 + 27 - 20) / 2 = 10; u2: ((50 + 40) / 2 - 20 + (50 + 20) / 2 - 20) / 2 = 20
    joint = stats.difference(a, b, "per_clip", "joint", "psnr", 200, 0.95, 0)
    assert joint.mean == pytest.approx(15.0) and joint.units == 2
    assert (joint.lo, joint.hi) == pytest.approx((10.0, 20.0))  # resamples of {10, 20}: both limits reached
    # pooling the frames instead: u1 (30 + 36 + 27) / 3 - 20 = 11; so pooled is a different number
    assert stats.difference(a, b, "per_clip", "pooled", "psnr", 200, 0.95, 0).mean == pytest.approx((11 + 20) / 2)
    mse = stats.difference(a, b, "per_clip_mse", "joint", "psnr", 200, 0.95, 0)
    assert mse.mean == pytest.approx(((psnr_of_mean_mse([30, 36]) + 27) / 2 - 20
                                      + (psnr_of_mean_mse([INF, 40]) + psnr_of_mean_mse([60, 20])) / 2 - 20) / 2)


# ------------------------------------------------------------------------------------------------
# Seeds.


def seeded(offsets: dict[object, float], base: np.ndarray) -> stats.UnitScores:
    return scores(pd.concat([unit_frames(base + off, seed=seed) for seed, off in offsets.items()]))


BASE = np.array([22.0, 31.0, 27.0, 35.0, 29.0, 24.0])


@pytest.mark.parametrize("a_seeds, b_seeds, expected", [
    # overlapping: seed 1 against seed 1 only, a constant difference
    ({0: 1.0, 1: 3.0}, {1: 0.5, 2: 9.0}, (2.5, 2.5, 2.5, 1)),
    # the same seeds listed in another order: seed k against seed k (differences -1, 2, 5), seeds
    # resampled: a limit is reached when all three draws take one seed (1/27 > 2.5 %)
    ({0: 1.0, 1: 3.0, 2: 5.0}, {2: 0.0, 1: 1.0, 0: 2.0}, (2.0, -1.0, 5.0, 3)),
    # disjoint: each side's mean over its seeds
    ({0: 1.0, 1: 3.0}, {5: 0.5, 6: 1.5}, (1.0, 1.0, 1.0, 1)),
    # seedless: met by every seed of the other side (differences 0.75 and 2.75; both draws alike 1/4)
    ({0: 1.0, 1: 3.0}, {"": 0.25}, (1.75, 0.75, 2.75, 2)),
    ({"": 0.25}, {0: 1.0, 1: 3.0}, (-1.75, -2.75, -0.75, 2)),
])
def test_seed_pairing(a_seeds, b_seeds, expected):
    diff = stats.difference(seeded(a_seeds, BASE), seeded(b_seeds, BASE), "per_clip", "joint", "psnr", 4000, 0.95, 0)
    assert (diff.mean, diff.lo, diff.hi, diff.seeds) == pytest.approx(expected) and diff.units == len(BASE)


def test_per_seed_means_and_their_spread_by_hand():
    table = pd.concat([unit_frames(BASE + offset, seed=seed) for seed, offset in ((10, 8.0), (2, 3.0), (0, 1.0))])
    scored = scores(table)
    assert scored.seeds == ["0", "2", "10"]  # seeds in numeric order, not as text ("10" < "2")
    cell = stats.averages(scored, stats.Resamples.draw(len(BASE), 3, 10, 0), 0.95)["per_clip"]["joint"]["psnr"]
    assert cell["mean"] == pytest.approx(BASE.mean() + 4.0)
    assert cell["seeds"] == pytest.approx({"0": BASE.mean() + 1, "2": BASE.mean() + 3, "10": BASE.mean() + 8})
    assert cell["seed_sd"] == pytest.approx(np.std([1.0, 3.0, 8.0], ddof=1))


# ------------------------------------------------------------------------------------------------
# Power: the minimum detectable difference (Table 3's comparisons).


def test_the_minimum_detectable_difference_is_the_two_normal_quantiles_times_the_standard_error():
    assert stats.minimum_detectable(1.0, 0.95) == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    assert stats.minimum_detectable(0.5, 0.90, power=0.5) == pytest.approx(0.5 * 1.644854, abs=1e-5)


def test_a_true_difference_of_the_mdd_is_separated_at_about_the_stated_power():
    """Samples of 30 units whose true paired difference is the MDD the comparison itself reports
    (from its bootstrap spread): the share that separates is ~80 %; at half the MDD it is far less."""
    rng = np.random.default_rng(7)
    units, sims = 30, 200
    mdd = np.mean([stats.difference(scores(unit_frames(rng.normal(0, 1, units))), scores(unit_frames(np.zeros(units))),
                                    "per_clip", "joint", "psnr", 400, 0.95, s).mdd for s in range(20)])
    assert mdd == pytest.approx(2.8016 / math.sqrt(units), rel=0.15)  # se of a mean of 30 unit-variance values

    zero = scores(unit_frames(np.zeros(units)))

    def separated(shift: float) -> float:
        hits = 0
        for s in range(sims):
            a = scores(unit_frames(rng.normal(shift, 1, units)))
            hits += stats.difference(a, zero, "per_clip", "joint", "psnr", 400, 0.95, s).separable
        return hits / sims

    assert 0.70 <= separated(mdd) <= 0.90
    assert separated(mdd / 2) <= 0.45
