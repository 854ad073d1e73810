"""The frame checks and the clip plan on hand-made difference sequences, and the params they read."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from alabench.config import ParamError, parse_params
from alabench.sources.checks import find_cuts, plan_clips, repeated_pairs
from alabench.sources.video import Extraction
from conftest import repo_params, tiny_params

CHECKS = parse_params(repo_params()).checks


def test_frames_repeated_twice_or_four_times_are_flagged():
    motion = np.linspace(4.0, 6.0, 40)
    twice = np.where(np.arange(40) % 2 == 0, 0.2, motion)
    four = np.where(np.arange(40) % 4 != 3, 0.1, motion)
    assert repeated_pairs(twice, CHECKS).mean() == pytest.approx(0.5)
    assert repeated_pairs(four, CHECKS).mean() > 0.4  # two of each three repeats stand beside motion
    assert not repeated_pairs(motion, CHECKS).any()


def test_a_slow_down_and_a_still_scene_are_not_repeats():
    slow_down = np.concatenate([np.linspace(20.0, 0.5, 30), np.linspace(0.5, 20.0, 30)])
    assert repeated_pairs(slow_down, CHECKS).mean() < CHECKS.max_repeated
    assert not repeated_pairs(np.zeros(30), CHECKS).any()


def test_a_spike_is_a_cut_and_fast_motion_is_not():
    d = np.full(60, 2.0)
    d[29] = 40.0
    assert find_cuts(d, CHECKS) == [30]
    fast = np.linspace(30.0, 60.0, 60)  # every pair differs a lot: motion, not a cut
    assert find_cuts(fast, CHECKS) == []
    flicker = np.full(60, 0.5)
    flicker[10] = 5.0  # 10x its neighbours but below cut_diff
    assert find_cuts(flicker, CHECKS) == []


@pytest.mark.parametrize("frames, cuts, expected", [
    (100, [], [(0, 100)]),
    (100, [40], [(0, 40), (40, 100)]),
    (100, [10], [(10, 100)]),  # the 10-frame shot is too short
    (250, [], [(0, 83), (83, 167), (167, 250)]),  # equal pieces of at most 100
    (130, [], [(0, 65), (65, 130)]),
    (20, [], []),
])
def test_plan_clips(frames, cuts, expected):
    assert plan_clips(frames, cuts, min_frames=27, max_frames=100) == expected


def test_max_clip_frames_below_one_training_window_is_refused():
    params = parse_params(dict(tiny_params(), video={**tiny_params()["video"], "max_clip_frames": 20}))
    with pytest.raises(ParamError, match="video.max_clip_frames = 20 is not allowed: must be >= 27"):
        Extraction.from_params(params, 200.0, reject=True)


@pytest.mark.parametrize("mutate, expected", [
    (lambda p: p["fetch"].update(datasets={"vimeo": "x"}), "fetch.datasets key = 'vimeo' is not allowed"),
    (lambda p: p["fetch"].update(datasets={"local": 3}), "fetch.datasets.local = 3 is not allowed: must be a string"),
    (lambda p: p["fetch"].update(datasets=["adobe240"]), "fetch.datasets = ['adobe240'] is not allowed: must be a mapping"),
    (lambda p: p["blur"].update(datasets=["synth", "adobe240"]),
     "blur.datasets lists adobe240 but fetch.datasets does not: add it there (e.g. `adobe240: sources/adobe240`)"),
    (lambda p: p["youtube240"].update(evidence="(fps"), "youtube240.evidence = '(fps' is not allowed: not a valid"),
    (lambda p: p["youtube240"].update(evidence="fps"), "group 1 must capture the frame rate"),
    (lambda p: p["youtube240"].update(min_height=2000), "youtube240.min_height = 2000 is not allowed"),
    (lambda p: p["checks"].update(cut_ratio=0.5), "checks.cut_ratio = 0.5 is not allowed"),
])
def test_bad_source_params_are_named(mutate, expected):
    data = copy.deepcopy(repo_params())
    mutate(data)
    with pytest.raises(ParamError) as info:
        parse_params(data, "params.yaml")
    assert str(info.value).startswith("params.yaml: ") and expected in str(info.value), str(info.value)
