"""The embedded data set: deterministic, split by photo, sub-pixel motion that blurs like video;
each test clip depends on one photo, the independent test unit."""

from __future__ import annotations

import csv
import importlib.util
import itertools

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, repo_params, tiny_params
from skimage.transform import resize

import alabench.sources.synth as synth
from alabench import stats
from alabench.blur import VIDEO_MAP, prepare_split, read_video_map
from alabench.config import merge, parse_params
from alabench.datasets import iter_test_clips
from alabench.frames import list_clips, list_frames, read_clip
from alabench.sources.photos import SOURCES, PhotoError, load_photo


def synth_params(**changes):
    data = tiny_params()
    data["synth"].update(changes)
    return parse_params(data).synth


def test_every_photo_loads_offline_as_rgb_float():
    for source in SOURCES:
        photo = load_photo(source)
        for view in photo.views:
            assert view.ndim == 3 and view.shape[2] == 3 and view.dtype == np.float32
            assert 0.0 <= view.min() and view.max() <= 1.0 and view.max() > 0.2
    assert len(load_photo("motorcycle").views) == 2  # one scene, two views: one source


def test_split_is_by_source_photo():
    """No photo on both sides; a training clip cuts its layers from other photos of its split, a test
    clip from its own photo only, so that it depends on one test unit."""
    cfg = synth_params()
    sources = synth.split_sources(cfg.test_photos)
    assert set(sources["train"]).isdisjoint(sources["test"])
    assert set(sources["train"]) | set(sources["test"]) == set(SOURCES)
    layered = 0
    for split, count in (("train", 6), ("test", 6)):
        for i in range(count):
            clip = synth.render_clip(cfg, split, i, 4)
            used = {clip.background, *clip.layers}
            assert used <= set(sources[split]), (split, i, used)
            if split == "train":
                assert clip.background not in clip.layers
            else:
                assert set(clip.layers) <= {clip.background}, (i, clip.layers)
                layered += bool(clip.layers)
    assert layered  # the test clips do have foreground layers


@pytest.mark.parametrize("profile", [None, "params.cpu-long.yaml"])
def test_the_test_clips_cover_at_least_12_photos_none_of_them_trained_on(profile):
    """Issue 36: the test units are >= 12 independent source photos, each the background of a test clip."""
    data = repo_params() if profile is None else merge(repo_params(), yaml.safe_load((REPO / profile).read_text()))
    cfg = parse_params(data).synth
    sources = synth.split_sources(cfg.test_photos)
    shown = {synth.background_photo(cfg, "test", i) for i in range(cfg.test.clips)}
    assert len(set(cfg.test_photos)) >= 12 and shown == set(cfg.test_photos)
    assert set(sources["train"]).isdisjoint(shown) and len(sources["train"]) >= 13  # as many as before issue 36


def test_no_two_sources_are_one_photo():
    """A source is one scene: two names for the same picture (PyWavelets' ``camera`` is scikit-image's)
    would put one photo on both sides of the split. Their thumbnails must differ."""
    def thumb(source):
        grey = load_photo(source).views[0].mean(axis=2)
        small = resize(grey, (32, 32), anti_aliasing=True)
        return (small - small.mean()) / (small.std() + 1e-6)
    thumbs = {s: thumb(s) for s in SOURCES}
    for a, b in itertools.combinations(SOURCES, 2):
        assert (thumbs[a] * thumbs[b]).mean() < 0.9, (a, b)


def test_render_is_deterministic_and_seeded():
    cfg = synth_params()
    a = synth.render_clip(cfg, "train", 3, 12)
    b = synth.render_clip(cfg, "train", 3, 12)
    np.testing.assert_array_equal(a.frames, b.frames)
    other = synth.render_clip(synth_params(seed=cfg.seed + 1), "train", 3, 12)
    assert not np.array_equal(a.frames, other.frames)
    assert a.frames.shape == (12, cfg.height, cfg.width, 3) and a.frames.dtype == np.uint8


def test_layers_drawn_in_their_footprint_equal_full_frame_sampling(monkeypatch):
    cfg = synth_params(width=96, height=64, layers=[3, 3], max_rotation_deg=1.0, max_zoom=0.01)
    fast = synth.render_clip(cfg, "test", 1, 20).frames
    monkeypatch.setattr(synth._Sprite, "footprint", lambda self, t, h, w: (slice(0, h), slice(0, w)))
    full = synth.render_clip(cfg, "test", 1, 20).frames
    np.testing.assert_array_equal(fast, full)


def test_motion_is_subpixel_and_averaging_blurs():
    """Consecutive 240 fps frames move by less than a pixel or two; 11 of them averaged is a blur."""
    cfg = synth_params(width=96, height=64, speed=[0.6, 0.6], layers=[1, 1])
    frames = synth.render_clip(cfg, "test", 0, 41).frames.astype(np.float64)
    step1 = np.abs(frames[21] - frames[20]).mean()
    step8 = np.abs(frames[28] - frames[20]).mean()
    assert 0 < step1 < step8  # motion accumulates smoothly
    blurred = frames[15:26].mean(axis=0)
    mse = ((blurred - frames[20]) ** 2).mean()
    psnr = 10 * np.log10(255 ** 2 / mse)
    assert 20 < psnr < 40, psnr  # visibly blurred, yet the same scene
    # blur lowers high-frequency energy (sharpness) compared with the centre frame
    def grad(img):
        return np.abs(np.diff(img, axis=1)).mean()
    assert grad(blurred) < 0.9 * grad(frames[20])


def test_write_dataset_layout_and_identical_bytes_with_any_worker_count(tmp_path):
    cfg1 = synth_params(workers=1)
    cfg2 = synth_params(workers=2)
    synth.write_dataset(cfg1, tmp_path / "one")
    synth.write_dataset(cfg2, tmp_path / "two")
    files1 = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*") if p.is_file()}
    files2 = {p.relative_to(tmp_path / "two"): p.read_bytes() for p in (tmp_path / "two").rglob("*") if p.is_file()}
    assert files1 == files2
    for split, size in (("train", cfg1.train), ("test", cfg1.test)):
        clips = list_clips(tmp_path / "one" / split)
        assert len(clips) == size.clips
        for clip in clips:
            assert len(list_frames(clip)) == size.frames
            assert read_clip(clip).shape == (size.frames, cfg1.height, cfg1.width, 3)
    with open(tmp_path / "one" / "clips.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == cfg1.train.clips + cfg1.test.clips
    assert {r["split"] for r in rows} == {"train", "test"}
    assert synth.UNITS_CSV == VIDEO_MAP  # the file the blur stage reads
    assert read_video_map(tmp_path / "one") == {r["clip"]: f"photo:{r['background']}" for r in rows}


def test_the_prepared_test_clips_carry_their_photo_as_the_unit(tmp_path):
    """videos.csv -> the blur stage's manifest -> TestClip.video: two clips over one photo are one unit."""
    cfg = synth_params(test={"clips": 3, "frames": 27}, test_photos=["astronaut", "coffee"],
                       train={"clips": 1, "frames": 2})
    synth.write_dataset(cfg, tmp_path / "sharp")
    blur = parse_params(tiny_params()).blur
    prepare_split(tmp_path / "sharp" / "test", tmp_path / "prepared", blur, root=tmp_path)
    clips = list(iter_test_clips(tmp_path / "prepared" / "all_blurry", tmp_path))
    assert {c.name: c.video for c in clips} == {"000_astronaut": "photo:astronaut", "001_coffee": "photo:coffee",
                                                "002_astronaut": "photo:astronaut"}
    table = pd.DataFrame({"video": [c.video for c in clips], "clip": [c.name for c in clips]})
    assert stats.unit_kind(table) == "photo"


def test_a_photo_whose_package_is_missing_is_named(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sporco" else real(name, *a))
    load_photo.cache_clear()
    try:
        with pytest.raises(PhotoError, match=r"sporco/data/kodim23.png: the Python package sporco.*make venv"):
            load_photo("kodim23")
    finally:
        load_photo.cache_clear()


def test_unknown_photo_is_named():
    with pytest.raises(KeyError, match="unknown photo 'cat'"):
        load_photo("cat")
