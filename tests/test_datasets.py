"""Training windows blurred on the fly with the same eq. 7 code, validation draw, test iterator."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import random_clip, tiny_params, write_clip

import alabench.datasets as ds
from alabench.blur import Eq7, prepare_split
from alabench.config import parse_params
from alabench.frames import FrameError, frame_name, write_png
from alabench.sources.extract import file_state


def data_params(**changes):
    data = tiny_params()
    data["train_data"].update(changes)
    return parse_params(data)


@pytest.fixture
def clips(tmp_path, rng):
    frames = {f"c{i}": random_clip(rng, 30 + 3 * i, 16, 16) for i in range(3)}
    for name, clip in frames.items():
        write_clip(tmp_path / "train" / name, clip)
    return {tmp_path / "train" / name: clip for name, clip in frames.items()}


def numpy_eq7(clip, center):
    return np.floor(clip[center - 5:center + 6].astype(np.float64).mean(axis=0)).astype(np.uint8)


def as_uint8(t):
    return np.round(t.movedim(-3, -1).numpy() * 255).astype(np.uint8)


def test_on_the_fly_windows_match_numpy_eq7(tmp_path, clips):
    params = data_params(window=3, crop=16, p_blur=1.0, hflip=False, vflip=False, reverse=False,
                         channel_shuffle=False)
    eq7 = Eq7.from_params(params.blur)
    data = ds.TrainWindows(list(clips), eq7, params.train_data, ds.ClipCache(tmp_path / "cache"))
    assert len(data) == sum(len(c) - 27 + 1 for c in clips.values())
    for i in (0, 5, len(data) - 1):
        sample = data[i]
        item = data.index[i]
        clip = clips[item.clip]
        centers = [item.first_center + 8 * j for j in range(3)]
        assert sample["inputs"].shape == (3, 3, 16, 16) and sample["interp"].shape == (2, 3, 16, 16)
        assert sample["blurry"].all()
        for j, c in enumerate(centers):
            np.testing.assert_array_equal(as_uint8(sample["inputs"][j]), numpy_eq7(clip, c))
            np.testing.assert_array_equal(as_uint8(sample["deblur"][j]), clip[c])
        for j, c in enumerate(centers[:-1]):
            np.testing.assert_array_equal(as_uint8(sample["interp"][j]), clip[c + 4])


def test_sharp_inputs_are_the_centre_frames(tmp_path, clips):
    params = data_params(p_blur=0.0, crop=16, hflip=False, vflip=False, reverse=False, channel_shuffle=False)
    data = ds.TrainWindows(list(clips), Eq7(), params.train_data, ds.ClipCache(tmp_path / "cache"))
    for i in (0, 3, len(data) - 1):
        sample, item = data[i], data.index[i]
        assert not sample["blurry"].any()
        for j in range(params.train_data.window):  # the sharp frames of the clip on disk, full frame
            np.testing.assert_array_equal(as_uint8(sample["inputs"][j]), clips[item.clip][item.first_center + 8 * j])
    augmented = ds.TrainWindows(list(clips), Eq7(), data_params(p_blur=0.0).train_data, ds.ClipCache(tmp_path / "cache"))
    sample = augmented[3]
    assert (sample["inputs"] == sample["deblur"]).all()  # with augmentation: the same crop, flips and channel order


def test_draws_are_seeded_per_epoch_and_index(tmp_path, clips):
    params = data_params(p_blur=0.5)
    data = ds.TrainWindows(list(clips), Eq7(), params.train_data, ds.ClipCache(tmp_path / "cache"))
    first = [data[i]["inputs"] for i in range(6)]
    again = [data[i]["inputs"] for i in range(6)]
    assert all((a == b).all() for a, b in zip(first, again))
    data.set_epoch(1)
    later = [data[i]["inputs"] for i in range(6)]
    assert any(not (a == b).all() for a, b in zip(first, later))
    rates = np.concatenate([data[i]["blurry"].numpy() for i in range(len(data))])
    assert 0.3 < rates.mean() < 0.7


def test_reversal_keeps_targets_aligned(tmp_path, clips):
    params = data_params(p_blur=0.0, reverse=True, hflip=False, vflip=False, channel_shuffle=False, crop=16)
    data = ds.TrainWindows(list(clips), Eq7(), params.train_data, ds.ClipCache(tmp_path / "cache"))
    for i in range(len(data)):
        sample = data[i]
        clip = clips[data.index[i].clip]
        c0 = data.index[i].first_center
        if np.array_equal(as_uint8(sample["deblur"][0]), clip[c0 + 16]):  # reversed
            np.testing.assert_array_equal(as_uint8(sample["interp"][0]), clip[c0 + 12])
            return
    pytest.fail("no sample was reversed")


def test_clip_cache_decodes_once_and_notices_changes(tmp_path, clips, monkeypatch, rng):
    calls = []
    real = ds.read_clip
    monkeypatch.setattr(ds, "read_clip", lambda d: calls.append(d) or real(d))
    clip_dir, frames = next(iter(clips.items()))
    np.testing.assert_array_equal(ds.ClipCache(tmp_path / "cache").load(clip_dir), frames)
    np.testing.assert_array_equal(ds.ClipCache(tmp_path / "cache").load(clip_dir), frames)  # new process, same file
    assert len(calls) == 1
    write_clip(clip_dir, random_clip(rng, len(frames), 16, 16))  # re-rendered clip
    ds.ClipCache(tmp_path / "cache").load(clip_dir)
    assert len(calls) == 2


def rewrite_keeping_size_and_mtime(path, frame) -> None:
    """New pixels in the same number of bytes (uncompressed PNG), the old mtime put back (a restore,
    `rsync -t`)."""
    st = path.stat()
    write_png(path, frame, compression=0)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_clip_cache_serves_new_pixels_for_a_frame_rewritten_with_its_size_and_mtime(tmp_path, clips):
    clip_dir, frames = next(iter(clips.items()))
    for t, frame in enumerate(frames):
        write_png(clip_dir / frame_name(t), frame, compression=0)
    np.testing.assert_array_equal(ds.ClipCache(tmp_path / "cache").load(clip_dir), frames)
    new = frames.copy()
    new[5] = 255 - frames[5]
    rewrite_keeping_size_and_mtime(clip_dir / frame_name(5), new[5])
    np.testing.assert_array_equal(ds.ClipCache(tmp_path / "cache").load(clip_dir), new)  # a later run


def test_a_source_video_rewritten_with_its_size_and_mtime_gets_a_new_key(tmp_path, rng):
    """The key of a local video or frame folder (alabench.sources.extract.file_state) notices new bytes."""
    folder = tmp_path / "shot"
    frames = random_clip(rng, 3, 16, 16)
    for t, frame in enumerate(frames):
        write_png(folder / frame_name(t), frame, compression=0)
    before = file_state(folder), file_state(folder / frame_name(1))
    rewrite_keeping_size_and_mtime(folder / frame_name(1), 255 - frames[1])
    after = file_state(folder), file_state(folder / frame_name(1))
    assert before[0] != after[0] and before[1] != after[1]
    assert [(name, size) for name, size, _ in before[0]] == [(name, size) for name, size, _ in after[0]]


def test_validation_draw_is_fixed(tmp_path, clips):
    params = data_params(val_windows_per_clip=3, val_p_blur=0.5)
    a = ds.ValidationWindows(list(clips), Eq7(), params.train_data, ds.ClipCache(tmp_path / "cache"))
    b = ds.ValidationWindows(list(clips), Eq7(), params.train_data, ds.ClipCache(tmp_path / "cache"))
    assert len(a) == 9
    first = [a[i] for i in range(len(a))]
    for i in range(len(a)):
        for again in (a[i], b[i]):  # read again (a later epoch), or by another process
            assert all((first[i][k] == again[k]).all() for k in ("inputs", "deblur", "interp", "blurry"))
        assert a[i]["inputs"].shape[-2:] == (16, 16)  # full frames
    blurry = np.concatenate([s["blurry"].numpy() for s in first])
    assert 0 < blurry.mean() < 1  # both kinds drawn at val_p_blur = 0.5


def test_train_val_split_and_errors(tmp_path, clips, rng):
    train, val = ds.split_train_val(list(clips), 1)
    assert [p.name for p in train] == ["c0", "c1"] and [p.name for p in val] == ["c2"]
    with pytest.raises(FrameError, match="val_clips = 3 leaves no training clip"):
        ds.split_train_val(list(clips), 3)
    write_clip(tmp_path / "train" / "short", random_clip(rng, 26, 16, 16))
    with pytest.raises(FrameError, match="short: 26 sharp frames are shorter than one training window"):
        ds.TrainWindows([tmp_path / "train" / "short"], Eq7(), data_params().train_data, ds.ClipCache(tmp_path / "c"))
    with pytest.raises(FrameError, match="train_data.crop = 32 is larger than the frames"):
        ds.TrainWindows(list(clips), Eq7(), data_params(crop=32).train_data, ds.ClipCache(tmp_path / "c"))


def test_test_clips_follow_the_manifest(tmp_path, rng):
    split = tmp_path / "data/sharp/toy/test"
    clip = random_clip(rng, 43)
    write_clip(split / "x", clip)
    params = parse_params(tiny_params())
    prepare_split(split, tmp_path / "data/prepared/toy/test", params.blur, root=tmp_path)
    (test_clip,) = ds.iter_test_clips(tmp_path / "data/prepared/toy/test/all_blurry", root=tmp_path)
    assert len(test_clip.inputs) == 5 and len(test_clip.gt_interp) == 4
    assert test_clip.blurry.all()
    np.testing.assert_array_equal(test_clip.inputs[2], numpy_eq7(clip, 21))
    np.testing.assert_array_equal(test_clip.gt_interp[2], clip[25])
    # frames are read when used (a clip streams), and a missing one is named when the clip is listed
    np.testing.assert_array_equal(list(test_clip.inputs)[4], test_clip.inputs[4])
    (tmp_path / test_clip.gt_deblur_paths[3]).unlink()
    with pytest.raises(FrameError, match="00029.png: frame file is missing"):
        list(ds.iter_test_clips(tmp_path / "data/prepared/toy/test/all_blurry", root=tmp_path))
