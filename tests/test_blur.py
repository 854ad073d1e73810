"""Paper eq. 7 and the two test protocols written by the blur stage."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import random_clip, repo_params, write_clip

from alabench.blur import (
    MANIFEST_COLUMNS,
    PROTOCOLS,
    Eq7,
    blur_draw,
    prepare_split,
    read_manifest,
    write_video_map,
)
from alabench.config import parse_params
from alabench.frames import FrameError, read_png


def blur_params(**changes):
    data = repo_params()
    data["blur"].update(changes)
    return parse_params(data).blur


def numpy_eq7(frames: np.ndarray, center: int, tau: int, rounding: str) -> np.ndarray:
    """Independent reference: float mean of 2*tau+1 frames, then truncation or rounding."""
    mean = frames[center - tau:center + tau + 1].astype(np.float64).mean(axis=0)
    return (np.floor(mean) if rounding == "truncate" else np.floor(mean + 0.5)).astype(np.uint8)


@pytest.mark.parametrize("rounding", ["truncate", "round"])
def test_average_matches_float_mean(rng, rounding):
    frames = random_clip(rng, 11, 40, 50)
    eq7 = Eq7(11, 8, rounding)
    np.testing.assert_array_equal(eq7.average(frames), numpy_eq7(frames, 5, 5, rounding))


def test_rounding_modes_differ_where_they_should():
    frames = np.zeros((11, 1, 1, 3), np.uint8)
    frames[:6] = 1  # mean 6/11 = 0.545...
    assert Eq7(11, 8, "truncate").average(frames).max() == 0
    assert Eq7(11, 8, "round").average(frames).max() == 1


def test_paper_indices():
    eq7 = Eq7(11, 8)
    assert eq7.centers(81) == [5, 13, 21, 29, 37, 45, 53, 61, 69]  # 69 + 5 = 80, the last frame
    assert eq7.centers(27) == [5, 13, 21]
    assert eq7.span(3) == 27 and eq7.tau == 5 and eq7.interp_offset == 4


def test_targets_are_the_5th_and_9th_frames_of_the_inputs_window(tmp_path):
    """Paper: the deblurring target is the 5th, the interpolation target the 9th of the 11 sharp frames
    averaged into an input (counted from 0). Frame t of this clip has every pixel = v(t) = t² // 3, so
    each written file says which sharp frame, or which mean of frames, it is."""
    values = np.arange(27) ** 2 // 3
    clip = np.broadcast_to(values.astype(np.uint8)[:, None, None, None], (27, 8, 8, 3)).copy()
    write_clip(tmp_path / "data/sharp/toy/test/ramp", clip)
    prepare_split(tmp_path / "data/sharp/toy/test", tmp_path / "data/prepared/toy/test", blur_params(), root=tmp_path)
    rows = read_manifest(tmp_path / "data/prepared/toy/test/all_blurry/manifest.csv")
    row = rows[1]  # input k = 1: the mean of sharp frames 8..18
    window = list(range(8, 19))
    blurry = read_png(tmp_path / row["input"])
    assert blurry.min() == blurry.max() == sum(values[t] for t in window) // 11, "the input is not the mean of frames 8..18"
    assert (read_png(tmp_path / row["gt_deblur"]) == values[window[5]]).all(), "deblur target: not the window's 5th frame"
    assert (read_png(tmp_path / row["gt_interp"]) == values[window[9]]).all(), "interp target: not the window's 9th frame"


def test_make_input_outside_the_clip_is_an_error(rng):
    with pytest.raises(IndexError, match="needs frames"):
        Eq7().make_input(random_clip(rng, 12), 7, True)


def test_mixed_draws_of_different_clips_are_independent():
    """Each clip's draw comes from its own name: not a shared stream, not one pattern repeated."""
    draws = {f"clip{i}": blur_draw(30, f"clip{i}", 400, 0.5) for i in range(12)}
    patterns = {d.tobytes() for d in draws.values()}
    assert len(patterns) == len(draws)
    names = list(draws)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            agreement = (draws[names[a]] == draws[names[b]]).mean()  # 0.5 for independent draws at p = 0.5
            assert abs(agreement - 0.5) < 4 * np.sqrt(0.25 / 400), (names[a], names[b], agreement)
            shifted = max((draws[names[a]][s:] == draws[names[b]][:400 - s]).mean() for s in range(1, 8))
            assert shifted < 0.5 + 4 * np.sqrt(0.25 / 390)  # nor one stream handed out in turn
    # a clip's draw does not depend on which other clips the split holds, nor their order
    np.testing.assert_array_equal(blur_draw(30, "clip3", 400, 0.5), draws["clip3"])


def test_mixed_draw_rate_and_determinism():
    draws = np.concatenate([blur_draw(30, f"clip{i}", 50, 0.5) for i in range(40)])
    assert abs(draws.mean() - 0.5) < 4 * np.sqrt(0.25 / draws.size)
    np.testing.assert_array_equal(blur_draw(30, "a", 20, 0.3), blur_draw(30, "a", 20, 0.3))
    assert not np.array_equal(blur_draw(30, "a", 200, 0.5), blur_draw(31, "a", 200, 0.5))
    assert blur_draw(30, "a", 20, 1.0).all() and not blur_draw(30, "a", 20, 0.0).any()


@pytest.fixture
def sharp_split(tmp_path, rng):
    split = tmp_path / "data/sharp/toy/test"
    clips = {name: random_clip(rng, frames) for name, frames in (("a", 40), ("b", 27), ("c", 35))}
    for name, frames in clips.items():
        write_clip(split / name, frames)
    return split, clips


def test_prepare_split_writes_eq7_inputs_and_a_consistent_manifest(tmp_path, sharp_split):
    split, clips = sharp_split
    params = blur_params(p_blur=0.5)
    counts = prepare_split(split, tmp_path / "data/prepared/toy/test", params, root=tmp_path)
    eq7 = Eq7.from_params(params)
    assert counts == {p: sum(len(eq7.centers(len(c))) for c in clips.values()) for p in PROTOCOLS}
    for protocol in PROTOCOLS:
        manifest = tmp_path / f"data/prepared/toy/test/{protocol}/manifest.csv"
        with open(manifest, newline="") as fh:
            assert tuple(csv.DictReader(fh).fieldnames) == MANIFEST_COLUMNS
        rows = read_manifest(manifest)
        inputs = (tmp_path / "data/prepared/toy/test" / protocol).rglob("*.png")
        listed = {p.relative_to(tmp_path).as_posix() for p in inputs}
        assert listed == {r["input"] for r in rows}  # every input file is in the manifest, once
        for row in rows:
            clip, k, center = clips[row["clip"]], int(row["k"]), int(row["center"])
            assert center == 5 + 8 * k
            expected = numpy_eq7(clip, center, 5, "truncate") if row["blurry"] == "1" else clip[center]
            np.testing.assert_array_equal(read_png(tmp_path / row["input"]), expected)
            assert row["gt_deblur"] == f"data/sharp/toy/test/{row['clip']}/{center:05d}.png"
            last = k == len(eq7.centers(len(clip))) - 1
            assert row["gt_interp"] == ("" if last else f"data/sharp/toy/test/{row['clip']}/{center + 4:05d}.png")
        if protocol == "all_blurry":
            assert all(r["blurry"] == "1" for r in rows)
    mixed = [r["blurry"] for r in read_manifest(tmp_path / "data/prepared/toy/test/mixed/manifest.csv")]
    assert {"0", "1"} == set(mixed)  # 11 inputs at p=0.5: both kinds (fixed seed)


def test_a_failed_manifest_write_leaves_the_old_manifest_whole(tmp_path, sharp_split, monkeypatch):
    split, _ = sharp_split
    out = tmp_path / "data/prepared/toy/test"
    prepare_split(split, out, blur_params(), root=tmp_path)
    before = {p: (out / p / "manifest.csv").read_bytes() for p in PROTOCOLS}

    def half_then_fail(self, rows):
        self.writerow(next(iter(rows)))
        raise OSError("No space left on device")
    monkeypatch.setattr(csv.DictWriter, "writerows", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        prepare_split(split, out, blur_params(seed=7), root=tmp_path)
    assert (out / "all_blurry" / "manifest.csv").read_bytes() == before["all_blurry"], "the failed write damaged the old manifest"
    assert len(read_manifest(out / "all_blurry" / "manifest.csv")) == 11
    assert not list(out.rglob("*.tmp"))


def test_same_seed_gives_identical_bytes(tmp_path, sharp_split):
    split, _ = sharp_split
    params = blur_params()
    outputs = []
    for run in ("one", "two"):
        out = tmp_path / run
        prepare_split(split, out, params, root=tmp_path, final_split=tmp_path / "same")
        outputs.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) > 10


def test_final_split_is_what_the_manifest_names(tmp_path, sharp_split):
    split, _ = sharp_split
    prepare_split(split, tmp_path / "tmp-out", blur_params(), root=tmp_path, final_split=tmp_path / "final")
    rows = read_manifest(tmp_path / "tmp-out/mixed/manifest.csv")
    assert all(r["input"].startswith("final/mixed/") for r in rows)


def test_missing_frame_is_named(tmp_path, sharp_split):
    split, _ = sharp_split
    (split / "a" / "00007.png").unlink()
    with pytest.raises(FrameError, match=r"a/00007.png: frame is missing"):
        prepare_split(split, tmp_path / "out", blur_params(), root=tmp_path)


def test_frames_of_different_sizes_are_named(tmp_path, sharp_split, rng):
    split, _ = sharp_split
    write_clip(split / "d", random_clip(rng, 30))
    from alabench.frames import write_png
    write_png(split / "d" / "00012.png", random_clip(rng, 1, 10, 16)[0])
    with pytest.raises(FrameError, match=r"d/00012.png: frame is 16x10 but 00000.png is 16x12"):
        prepare_split(split, tmp_path / "out", blur_params(), root=tmp_path)


def test_unreadable_png_is_named(tmp_path, sharp_split):
    split, _ = sharp_split
    (split / "b" / "00003.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(FrameError, match=r"b/00003.png: cannot read this PNG"):
        prepare_split(split, tmp_path / "out", blur_params(), root=tmp_path)


def test_clip_shorter_than_two_inputs_is_named(tmp_path, sharp_split, rng):
    split, _ = sharp_split
    write_clip(split / "short", random_clip(rng, 18))
    with pytest.raises(FrameError, match=r"short: 18 sharp frames make 1 input\(s\).*at least 19 frames"):
        prepare_split(split, tmp_path / "out", blur_params(), root=tmp_path)


def test_the_manifest_names_each_clips_source_video(tmp_path, sharp_split):
    """The test unit: pieces of one video (a fetch manifest's `clips`) share its name; a clip with no
    video map (synth) is its own video. Rejected rows add nothing."""
    split, _ = sharp_split
    raw = tmp_path / "manifest.csv"
    raw.write_text("id,status,clips\nlong-video,ok,a b\nother,ok,c\nbroken,rejected,\n")
    prepared = tmp_path / "data/prepared/toy/test"
    prepare_split(split, prepared, blur_params(), root=tmp_path)
    assert {r["clip"]: r["video"] for r in read_manifest(prepared / "all_blurry/manifest.csv")} == {
        "a": "a", "b": "b", "c": "c"}
    write_video_map(raw, split.parent)
    prepare_split(split, prepared, blur_params(), root=tmp_path)
    for protocol in PROTOCOLS:
        assert {r["clip"]: r["video"] for r in read_manifest(prepared / protocol / "manifest.csv")} == {
            "a": "long-video", "b": "long-video", "c": "other"}
