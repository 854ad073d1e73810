"""The embedded data set: deterministic, split by photo, sub-pixel motion that blurs like video."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import tiny_params

import alabench.sources.synth as synth
from alabench.config import parse_params
from alabench.frames import list_clips, list_frames, read_clip
from alabench.sources.photos import SOURCES, load_photo


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
    cfg = synth_params()
    sources = synth.split_sources(cfg.test_photos)
    assert set(sources["train"]).isdisjoint(sources["test"])
    assert set(sources["train"]) | set(sources["test"]) == set(SOURCES)
    for split, count in (("train", 6), ("test", 6)):
        for i in range(count):
            clip = synth.render_clip(cfg, split, i, 4)
            used = {clip.background, *clip.layers}
            assert used <= set(sources[split]), (split, i, used)
            assert clip.background not in clip.layers


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


def test_unknown_photo_is_named():
    with pytest.raises(KeyError, match="unknown photo 'cat'"):
        load_photo("cat")
