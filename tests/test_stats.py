"""Paired comparisons (alabench.stats): differences per (seed, unit), bootstrapped with shared resamples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alabench import stats
from alabench.summary import COLUMNS


def frames(unit_psnr: dict[str, float], seed: object = "", clips_per_unit: int = 1) -> pd.DataFrame:
    """One deblurred and one interpolated frame per clip, each at its unit's PSNR."""
    rows = [(seed, unit, f"{unit}-{c:03d}", 0, kind, 1, psnr, 0.9, 0.1)
            for unit, psnr in unit_psnr.items() for c in range(clips_per_unit) for kind in ("deblur", "interp")]
    return pd.DataFrame(rows, columns=COLUMNS)


def scores(table: pd.DataFrame) -> stats.UnitScores:
    return stats.UnitScores.from_frames(table, 50.0)


BASE = {f"u{i}": 20.0 + 2.5 * i for i in range(8)}


def test_a_constant_gain_is_separable_although_the_unpaired_intervals_overlap():
    a = scores(frames({u: p + 0.3 for u, p in BASE.items()}))
    b = scores(frames(BASE))
    diff = stats.difference(a, b, "per_clip", "joint", "psnr", 1000, 0.95, 0)
    assert (diff.mean, diff.lo, diff.hi) == pytest.approx((0.3, 0.3, 0.3)) and diff.separable
    assert diff.units == 8 and diff.seeds == 1
    r = stats.Resamples.draw(8, 1, 1000, 0)
    unpaired = [stats.interval(stats.statistic(s, "per_clip", "joint", "psnr", r), 0.95) for s in (a, b)]
    assert unpaired[0][0] < unpaired[1][1]  # overlapping: the unpaired view could not tell them apart


def test_the_paired_interval_is_the_percentile_of_the_mean_gain_under_the_shared_resamples():
    """Exactly (to the 6 decimals stored): the resamples' unit counts applied by hand to the gains, then
    numpy's percentiles. Against independent references (exact enumeration, scipy, coverage):
    tests/test_stats_reference.py."""
    rng = np.random.default_rng(1)
    gains = rng.normal(0.2, 0.5, 8)
    a = scores(frames({u: p + g for (u, p), g in zip(BASE.items(), gains)}))
    diff = stats.difference(a, scores(frames(BASE)), "per_clip", "joint", "psnr", 4000, 0.95, 0)
    assert diff.mean == pytest.approx(gains.mean())
    counts = stats.Resamples.draw(8, 1, 4000, 0).units  # (4000, 8): how often each unit is drawn
    boot = counts @ gains / 8
    assert (diff.lo, diff.hi) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])), abs=1e-6)
    assert 0 < diff.lo and diff.separable  # this draw excludes zero (a mean gain of 0.27 dB, sd 0.1)


def test_pairs_by_seed_and_a_seedless_method_meets_every_seed():
    seeded = pd.concat([frames({u: p + 1.0 for u, p in BASE.items()}, seed=0),
                        frames({u: p + 3.0 for u, p in BASE.items()}, seed=1)])
    a, b = scores(seeded), scores(frames(BASE))
    assert a.seeds == ["0", "1"] and not b.seeded
    diff = stats.difference(a, b, "per_clip", "deblur", "psnr", 500, 0.95, 0)
    assert diff.mean == pytest.approx(2.0) and diff.seeds == 2
    assert 1.0 <= diff.lo < 2.0 < diff.hi <= 3.0  # seeds are resampled too
    other = scores(pd.concat([frames({u: p + 1.5 for u, p in BASE.items()}, seed=0),
                              frames({u: p + 2.5 for u, p in BASE.items()}, seed=7)]))
    paired = stats.difference(a, other, "per_clip", "deblur", "psnr", 500, 0.95, 0)  # common seed 0 only
    assert (paired.mean, paired.lo, paired.hi, paired.seeds) == pytest.approx((-0.5, -0.5, -0.5, 1))


def test_pieces_of_one_video_are_one_unit():
    a = scores(frames({"long": 30.0, "short": 20.0}, clips_per_unit=3))
    assert a.units == ["long", "short"] and a.counts["deblur"].tolist() == [[3.0, 3.0]]
    point = stats.Resamples.point(2, 1)
    assert stats.statistic(a, "per_clip", "joint", "psnr", point)[0] == pytest.approx(25.0)


def test_resamples_are_seeded_and_shared():
    one, two = stats.Resamples.draw(8, 1, 100, 3), stats.Resamples.draw(8, 3, 100, 3)
    assert np.array_equal(one.units, two.units) and (one.units.sum(1) == 8).all() and (two.seeds.sum(1) == 3).all()
    assert not np.array_equal(one.units, stats.Resamples.draw(8, 1, 100, 4).units)


def nested(clip_psnr: np.ndarray, clips_per_photo: int, by_clip: bool = False) -> pd.DataFrame:
    """One deblurred and one interpolated frame per clip; clip i is cut from photo i // clips_per_photo
    (``video`` = ``photo:pNN``), or with ``by_clip`` each clip taken for a unit of its own."""
    rows = [("", f"c{i:02d}" if by_clip else f"photo:p{i // clips_per_photo:02d}", f"c{i:02d}", 0, kind, 1, psnr,
             0.9, 0.1) for i, psnr in enumerate(clip_psnr) for kind in ("deblur", "interp")]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_the_bootstrap_resamples_photos_with_their_clips_nested():
    """Issue 36: two clips cut from one photo are not independent. The paired interval is the one from
    resampling the 12 photos (each photo's mean over its clips' frames), and clip-level resampling,
    which takes the 24 clips for independent, would give a narrower one."""
    rng = np.random.default_rng(2)
    photo_gain = rng.normal(0.3, 0.6, 12)
    gain = np.repeat(photo_gain, 2) + rng.normal(0.0, 0.05, 24)  # a photo's two clips gain alike
    base = 25.0 + rng.normal(0.0, 2.0, 24)
    diff = stats.difference(scores(nested(base + gain, 2)), scores(nested(base, 2)), "per_clip", "joint", "psnr",
                            4000, 0.95, 0)
    assert diff.units == 12 and diff.mean == pytest.approx(gain.mean())
    boot = stats.Resamples.draw(12, 1, 4000, 0).units @ gain.reshape(12, 2).mean(axis=1) / 12
    assert (diff.lo, diff.hi) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])), abs=1e-6)
    clips = stats.difference(scores(nested(base + gain, 2, by_clip=True)), scores(nested(base, 2, by_clip=True)),
                             "per_clip", "joint", "psnr", 4000, 0.95, 0)
    assert clips.units == 24 and clips.mean == pytest.approx(diff.mean)
    assert clips.hi - clips.lo < 0.8 * (diff.hi - diff.lo)  # ~1/sqrt(2): the clip-level interval is too narrow


def test_the_unit_kind_comes_from_the_ids():
    assert stats.unit_kind(nested(np.full(4, 30.0), 2)) == "photo"
    assert stats.unit_kind(nested(np.full(4, 30.0), 2, by_clip=True)) == "clip"
    assert stats.unit_kind(frames({"v1": 30.0, "v2": 20.0}, clips_per_unit=2)) == "video"
    assert stats.unit_kind(frames({"v1": 30.0, "photo:v2": 20.0})) == "clip"  # no kind shared by every unit
    # a video id that is a URL (YouTube240) names no kind by its scheme; its summary must fit the schema
    assert stats.unit_kind(frames({"https://youtu.be/a": 30.0, "https://youtu.be/b": 20.0}, clips_per_unit=2)) == "video"
    assert stats.unit_kind(frames({"http://127.0.0.1/a.mp4": 30.0, "http://127.0.0.1/b.mp4": 20.0})) == "clip"
