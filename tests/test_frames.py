"""Frame I/O: atomic writes, and errors that name the file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import random_clip, write_clip
from PIL import Image

from alabench.frames import (
    FrameError,
    atomic_dir,
    clean_leftovers,
    list_clips,
    list_frames,
    read_png,
    write_png,
)


def test_png_round_trip(tmp_path, rng):
    image = random_clip(rng, 1)[0]
    write_png(tmp_path / "a.png", image)
    np.testing.assert_array_equal(read_png(tmp_path / "a.png"), image)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary left behind


def test_a_failed_png_write_leaves_the_old_file_whole(tmp_path, rng, monkeypatch):
    old, new = random_clip(rng, 2, 32, 32)
    write_png(tmp_path / "a.png", old)
    before = (tmp_path / "a.png").read_bytes()
    real_save = Image.Image.save

    def save_half_then_fail(self, fp, *args, **kwargs):  # as a full disk or a kill would
        real_save(self, fp, *args, **kwargs)
        with open(fp, "r+b") as fh:
            fh.truncate(len(before) // 2)
        raise OSError("No space left on device")
    monkeypatch.setattr(Image.Image, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        write_png(tmp_path / "a.png", new)
    assert (tmp_path / "a.png").read_bytes() == before, "the failed write damaged the old PNG"
    np.testing.assert_array_equal(read_png(tmp_path / "a.png"), old)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary left behind


def test_grey_png_is_refused_not_converted(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "g.png")
    with pytest.raises(FrameError, match="g.png: expected an RGB PNG, found mode L"):
        read_png(tmp_path / "g.png")


def test_missing_and_broken_files_are_named(tmp_path):
    with pytest.raises(FrameError, match="nope.png: frame file is missing"):
        read_png(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(FrameError, match="bad.png: cannot read this PNG"):
        read_png(tmp_path / "bad.png")


def test_gap_in_numbering_names_the_missing_frame(tmp_path, rng):
    write_clip(tmp_path / "clip", random_clip(rng, 5))
    (tmp_path / "clip" / "00002.png").unlink()
    with pytest.raises(FrameError, match=r"clip/00002.png: frame is missing"):
        list_frames(tmp_path / "clip")
    with pytest.raises(FrameError, match="no frames named"):
        list_frames(tmp_path)
    with pytest.raises(FrameError, match="no clip folders"):
        list_clips(tmp_path / "clip")


def test_atomic_dir_keeps_the_old_output_when_the_work_fails(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "v1").write_text("complete")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "v2").write_text("half")
            raise RuntimeError("killed")
    assert [p.name for p in out.iterdir()] == ["v1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left
    with atomic_dir(out) as tmp:
        (tmp / "v3").write_text("complete")
    assert [p.name for p in out.iterdir()] == ["v3"]


def test_atomic_dir_output_has_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755  # mkdtemp alone makes 0700


def _killed_leftovers(parent: Path) -> None:
    """What SIGKILL leaves: a half-written .tmp folder and a .old one (killed between the two renames)."""
    (parent / ".alanet.l_h2y34p.tmp").mkdir(parents=True)
    (parent / ".alanet.l_h2y34p.tmp" / "summary.json").write_text("{half")
    (parent / ".alanet.old").mkdir()
    (parent / ".alanet.old" / "summary.json").write_text("{}")
    (parent / ".alanet_self.abcdefgh.tmp").mkdir(exist_ok=True)  # another output's: not ours to remove


def test_leftovers_of_a_killed_run_are_cleaned_and_a_lone_old_output_is_put_back(tmp_path):
    _killed_leftovers(tmp_path)
    clean_leftovers(tmp_path / "alanet")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".alanet_self.abcdefgh.tmp", "alanet"]
    assert (tmp_path / "alanet" / "summary.json").read_text() == "{}"  # the last complete output, restored
    _killed_leftovers(tmp_path)
    with atomic_dir(tmp_path / "alanet") as tmp:  # the next run cleans before it starts
        (tmp / "summary.json").write_text("{new}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".alanet_self.abcdefgh.tmp", "alanet"]
    assert (tmp_path / "alanet" / "summary.json").read_text() == "{new}"


def test_a_frame_folder_numbered_without_padding_is_read_in_numeric_order(tmp_path):
    """`1.png ... 12.png` (no zero padding, names of different lengths): text order would read 1, 10, 11, 12, 2."""
    from alabench.sources.video import open_frames

    for i in range(1, 13):
        Image.fromarray(np.full((8, 8, 3), i * 10, np.uint8)).save(tmp_path / f"{i}.png")
    with open_frames(tmp_path) as (probe, frames):
        values = [int(frame[0, 0, 0]) for frame, _ in frames]
    assert probe.expected_frames == 12
    assert values == [i * 10 for i in range(1, 13)]
