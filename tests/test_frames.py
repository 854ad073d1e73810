"""Frame I/O: atomic writes, and errors that name the file."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_clip, write_clip
from PIL import Image

from alabench.frames import (
    FrameError,
    atomic_dir,
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
