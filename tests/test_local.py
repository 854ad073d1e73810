"""`local`: your own videos and frame folders through the same checks, extraction and blur."""

from __future__ import annotations

import csv
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alabench.blur import read_manifest
from alabench.config import parse_params
from alabench.sources import SourceError
from alabench.sources.local import build
from conftest import git_repo, run, tiny_params
from footage import encode, encode_timed, pendulum, shot

SMOOTH = (0.5, 1.5)


def params_dict(folder: Path) -> dict:
    p = tiny_params()
    p["fetch"]["datasets"] = {"local": str(folder)}
    p["video"].update(width=48, height=32, workers=2)
    return p


def frame_folder(path: Path, frames: np.ndarray) -> Path:
    path.mkdir(parents=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(path / f"img_{i:04d}.jpg", quality=95)
    return path


@pytest.fixture
def footage(tmp_path) -> Path:
    folder = tmp_path / "my videos"
    encode(folder / "phone_slowmo.mp4", shot(0, 40, SMOOTH), 30)  # a 240 fps capture saved at 30 fps
    encode(folder / "highspeed.mov", shot(1, 40, SMOOTH), 240)
    encode(folder / "ordinary.mp4", shot(2, 40, SMOOTH), 30)
    encode(folder / "two shots.mp4", np.concatenate([shot(3, 32, SMOOTH), shot(3, 32, SMOOTH, split="train")]), 240)
    frame_folder(folder / "burst", shot(4, 30, SMOOTH))
    frame_folder(folder / "unlisted_frames", shot(5, 30, SMOOTH))
    (folder / "notes.txt").write_text("not a video")
    (folder / "capture_fps.csv").write_text("name,capture_fps\nphone_slowmo.mp4,240\nburst,240\n")
    return folder


def manifest(raw: Path) -> dict[str, dict[str, str]]:
    with open(raw / "manifest.csv", newline="") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


def test_videos_and_frame_folders_are_checked_and_extracted(footage, tmp_path):
    raw, sharp = tmp_path / "raw", tmp_path / "sharp"
    build(parse_params(params_dict(footage)), footage, raw, sharp)
    rows = manifest(raw)
    assert set(rows) == {"phone_slowmo.mp4", "highspeed.mov", "ordinary.mp4", "two shots.mp4", "burst",
                         "unlisted_frames"}
    assert {k: (r["status"], r["capture_fps"], r["capture_fps_from"]) for k, r in rows.items()} == {
        "phone_slowmo.mp4": ("ok", "240", "capture_fps.csv"),
        "highspeed.mov": ("ok", "240", "container"),
        "ordinary.mp4": ("rejected", "30", "container"),
        "two shots.mp4": ("ok", "240", "container"),
        "burst": ("ok", "240", "capture_fps.csv"),
        "unlisted_frames": ("rejected", "", "container"),
    }
    assert rows["ordinary.mp4"]["reason"] == "capture rate 30 fps (container) is below min_fps 200"
    assert rows["unlisted_frames"]["reason"].startswith("capture rate unknown")
    assert rows["two shots.mp4"]["clips"] == "two_shots-000 two_shots-001"
    assert sorted(p.name for p in (sharp / "test").iterdir()) == [
        "burst-000", "highspeed-000", "phone_slowmo-000", "two_shots-000", "two_shots-001"]
    assert (rows["burst"]["width"], rows["burst"]["height"], rows["burst"]["frames"]) == ("64", "36", "30")
    with Image.open(sharp / "test/burst-000/00029.png") as img:
        assert img.size == (48, 32) and img.mode == "RGB"


def test_a_corrupt_video_fails_by_name_the_others_are_done_and_a_rerun_redoes_only_what_is_missing(footage, tmp_path):
    raw, sharp = tmp_path / "raw", tmp_path / "sharp"
    good = (footage / "highspeed.mov").read_bytes()
    (footage / "highspeed.mov").write_bytes(good[: len(good) * 2 // 3])  # truncated
    params = parse_params(params_dict(footage))
    with pytest.raises(SourceError) as info:
        build(params, footage, raw, sharp)
    assert str(info.value).startswith(f"1 of 6 videos failed (the others are done; see {raw / 'manifest.csv'}):\n"
                                      f"  highspeed.mov: cannot decode {footage / 'highspeed.mov'}: ")
    assert "(corrupt or truncated?)" in str(info.value)
    done = {p: p.stat().st_mtime_ns for p in sharp.glob("test/*/00000.png")}
    assert len(done) == 4
    (footage / "highspeed.mov").write_bytes(good)
    build(params, footage, raw, sharp)
    after = {p: p.stat().st_mtime_ns for p in sharp.glob("test/*/00000.png")}
    assert set(after) - set(done) == {sharp / "test/highspeed-000/00000.png"}
    assert all(after[p] == t for p, t in done.items())  # nothing redone


def test_a_removed_video_takes_its_clips_with_it(footage, tmp_path):
    raw, sharp = tmp_path / "raw", tmp_path / "sharp"
    params = parse_params(params_dict(footage))
    build(params, footage, raw, sharp)
    (footage / "two shots.mp4").unlink()
    build(params, footage, raw, sharp)
    assert "two shots.mp4" not in manifest(raw) and not list((sharp / "test").glob("two_shots-*"))


def test_a_changed_param_redoes_the_videos(footage, tmp_path):
    raw, sharp = tmp_path / "raw", tmp_path / "sharp"
    build(parse_params(params_dict(footage)), footage, raw, sharp)
    p = params_dict(footage)
    p["video"].update(width=32)
    build(parse_params(p), footage, raw, sharp)
    with Image.open(sharp / "test/burst-000/00000.png") as img:
        assert img.size == (32, 32)


@pytest.mark.parametrize("csv_text, expected", [
    ("name,capture_fps\nnope.mp4,240\n", "capture_fps.csv names nope.mp4, but"),
    ("name,capture_fps\nburst,fast\n", "capture_fps.csv, line 2: capture_fps 'fast' is not a number"),
    ("file,fps\n", "capture_fps.csv: the header must be name,capture_fps"),
])
def test_a_bad_capture_list_is_named(footage, tmp_path, csv_text, expected):
    (footage / "capture_fps.csv").write_text(csv_text)
    with pytest.raises(SourceError, match=expected):
        build(parse_params(params_dict(footage)), footage, tmp_path / "raw", tmp_path / "sharp")


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(SourceError, match="nowhere: folder not found; put your videos there, or name your folder in "
                                          "fetch.datasets.local"):
        build(parse_params(params_dict(tmp_path / "nowhere")), tmp_path / "nowhere", tmp_path / "raw", tmp_path / "s")


@pytest.mark.pipeline
def test_dvc_repro_of_a_folder_outside_the_repository(footage, tmp_path):
    """The user's path: name the folder, add `local` to blur.datasets, `dvc repro`; new videos rerun it."""
    p = params_dict(footage)
    p["blur"]["datasets"] = ["synth", "local"]
    repo = git_repo(tmp_path / "repo", p)
    run([sys.executable, "-m", "dvc", "repro", "blur@local"], repo)
    rows = read_manifest(repo / "data/prepared/local/test/mixed/manifest.csv")
    assert {r["clip"] for r in rows} == {"burst-000", "highspeed-000", "phone_slowmo-000", "two_shots-000",
                                         "two_shots-001"}
    assert "Data and pipelines are up to date" in run([sys.executable, "-m", "dvc", "status", "blur@local"], repo).stdout
    encode(footage / "another.mov", shot(6, 40, SMOOTH), 240)
    again = run([sys.executable, "-m", "dvc", "repro", "blur@local"], repo).stdout
    assert "Running stage 'fetch@local'" in again and "Running stage 'blur@local'" in again
    assert (repo / "data/sharp/local/test/another-000/00000.png").is_file()


def alternating_pts(frames: int) -> list[int]:
    """Timestamps in 1/480 s whose intervals alternate 1/480 s and 1/160 s (mean 1/240 s)."""
    return [0, *np.cumsum([1 if i % 2 == 0 else 3 for i in range(frames - 1)]).tolist()]


def test_variable_frame_rate_is_measured_and_rejected_frames_decoded_as_stored(tmp_path):
    folder = tmp_path / "vfr"
    encode_timed(folder / "vfr.mp4", pendulum(0, 30), alternating_pts(30), Fraction(1, 480))
    encode(folder / "steady.mp4", pendulum(1, 30), 240)
    raw = tmp_path / "raw"
    build(parse_params(params_dict(folder)), folder, raw, tmp_path / "sharp")
    rows = manifest(raw)
    assert rows["vfr.mp4"]["status"] == "rejected" and rows["vfr.mp4"]["frames"] == "30"  # as stored
    assert float(rows["vfr.mp4"]["container_fps"]) > 200  # the average rate alone looks right
    assert rows["vfr.mp4"]["reason"] == ("irregular frame timing: a frame interval deviates 51% from the mean, beyond "
                                         "checks.max_timing_jitter 10% (variable frame rate?); eq. 7 needs equally "
                                         "spaced frames")
    assert rows["vfr.mp4"]["timing_jitter"] == "0.510" and rows["steady.mp4"]["timing_jitter"] == "0.000"
    assert rows["steady.mp4"]["status"] == "ok" and rows["steady.mp4"]["frames"] == "30"


def test_upscaled_and_stretched_sources_are_flagged_and_small_ones_rejected(tmp_path):
    folder = tmp_path / "small"
    encode(folder / "small.mp4", pendulum(2, 30, width=224, height=128), 240)
    encode(folder / "same_shape.mp4", pendulum(3, 30, width=40, height=22), 240)
    p = params_dict(folder)
    p["video"].update(width=640, height=352)
    raw, sharp = tmp_path / "raw", tmp_path / "sharp"
    build(parse_params(p), folder, raw, sharp)
    row = manifest(raw)["small.mp4"]
    assert (row["status"], row["width"], row["height"], row["flags"]) == ("ok", "224", "128", "upscaled aspect_changed")
    assert row["reason"] == ("upscaled: source 224x128 is smaller than the 640x352 frames (video.width, height); "
                             "aspect changed: 1.75 -> 1.82 (+3.9%, beyond checks.max_aspect_change 3%): the picture "
                             "is stretched")
    assert manifest(raw)["same_shape.mp4"]["flags"] == "upscaled"  # 40x22 -> 640x352: +0.0 %
    p["checks"].update(min_width=320, min_height=180)
    with pytest.raises(SourceError, match="none of the 2 videos"):
        build(parse_params(p), folder, raw, sharp)
    row = manifest(raw)["small.mp4"]
    assert row["status"] == "rejected" and not list((sharp / "test").glob("small-*"))
    assert row["reason"] == "source 224x128 is below checks.min_width x min_height 320x180"
