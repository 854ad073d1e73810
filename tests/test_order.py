"""Order: every place that lists frames, inputs or clips keeps the numeric order with more than ten of them.

Text order puts 10 before 2; it shows only with names or numbers of different lengths, so every test
here uses clips of 12 or 13 inputs, clips named clip2 and clip10, and numbers written without padding
where a file format allows it (the manifest's k, samples.csv's k).
"""

from __future__ import annotations

import csv
import random

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_params, write_clip
from skimage.metrics import peak_signal_noise_ratio

from alabench.blur import MANIFEST_COLUMNS, Eq7, prepare_split
from alabench.config import BlurParams, parse_params
from alabench.datasets import ClipCache, iter_test_clips
from alabench.evaluation import model_outputs, score_outputs
from alabench.frames import frame_name, list_frames, read_clip, read_png, write_png
from alabench.inference import ClipRunner
from alabench.methods import build_model, get_method
from alabench.viewer import viewer_set

BLUR = BlurParams(datasets=("synth",), window=3, stride=2, rounding="truncate", p_blur=0.5, seed=0)
FRAMES = 27  # eq. 7 window 3, stride 2: inputs centred on sharp frames 1, 3, ..., 25: 13 inputs
INPUTS = 13
CLIPS = ("clip2", "clip10")


def sharp_clip(seed: int) -> np.ndarray:
    """(FRAMES, 8, 12, 3) uint8, every frame different (frame t: a noise image plus 37 t mod 97, not linear
    in t, so that a blurry input is never its centre frame)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 60, size=(1, 8, 12, 3))
    return (base + (37 * np.arange(FRAMES) % 97)[:, None, None, None]).astype(np.uint8)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("order")
    for i, name in enumerate(CLIPS):
        write_clip(root / "sharp" / "test" / name, sharp_clip(i))
    prepare_split(root / "sharp" / "test", root / "prepared", BLUR, root=root)
    return root


def test_list_frames_and_read_clip_keep_numeric_order(tmp_path):
    frames = sharp_clip(0)[:12]
    paths = write_clip(tmp_path / "c", frames)
    for path in random.Random(0).sample(paths, len(paths)):  # written out of order
        path.touch()
    assert [p.name for p in list_frames(tmp_path / "c")] == [frame_name(t) for t in range(12)]
    assert np.array_equal(read_clip(tmp_path / "c"), frames)
    assert np.array_equal(ClipCache(tmp_path / "cache").load(tmp_path / "c"), frames)


def test_a_clip_of_thirteen_inputs_is_prepared_and_read_in_input_order(prepared):
    eq7 = Eq7(BLUR.window, BLUR.stride, BLUR.rounding)
    for protocol in ("all_blurry", "mixed"):
        with open(prepared / "prepared" / protocol / "manifest.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [r["k"] for r in rows if r["clip"] == "clip10"] == [str(k) for k in range(INPUTS)]  # unpadded
        # the manifest's rows shuffled: the reader orders them by k, as numbers
        random.Random(1).shuffle(rows)
        with open(prepared / "prepared" / protocol / "manifest.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        clips = {c.name: c for c in iter_test_clips(prepared / "prepared" / protocol, prepared)}
        assert set(clips) == set(CLIPS)
        for i, name in enumerate(CLIPS):
            clip, sharp = clips[name], sharp_clip(i)
            assert len(clip.inputs) == INPUTS and len(clip.gt_interp) == INPUTS - 1
            for k in range(INPUTS):
                center = eq7.tau + BLUR.stride * k
                assert clip.input_paths[k].endswith(f"{name}/input_{k:05d}.png")
                assert np.array_equal(clip.inputs[k], eq7.make_input(sharp, center, bool(clip.blurry[k])))
                assert np.array_equal(clip.gt_deblur[k], sharp[center])
                if k < INPUTS - 1:
                    assert np.array_equal(clip.gt_interp[k], sharp[center + BLUR.stride // 2])


def test_a_clip_of_thirteen_inputs_is_scored_against_its_own_targets(prepared):
    """blurry_input over the prepared clips: each frames.csv row's PSNR is that of input k against sharp
    frame c_k (deblur) or of the mean of inputs k and k+1 against c_k + stride / 2 (interp), recomputed
    here from the files, by their numbers."""
    model = build_model(get_method("blurry_input"), parse_params(tiny_params()))
    clips = list(iter_test_clips(prepared / "prepared" / "all_blurry", prepared))
    zero_lpips = lambda a, b: np.zeros(len(a))  # noqa: E731  (LPIPS is not what is checked here)
    table = score_outputs(model_outputs(ClipRunner(model), clips), zero_lpips).frames
    for name in CLIPS:
        rows = table[table["clip"] == name]
        assert rows["k"].tolist() == [*range(INPUTS), *range(INPUTS - 1)]  # deblur rows, then interp rows
        for row in rows.itertuples():
            inputs = [read_png(prepared / "prepared" / "all_blurry" / name / f"input_{k:05d}.png").astype(float)
                      for k in (row.k, row.k + 1) if k < INPUTS]
            center = 1 + BLUR.stride * row.k
            if row.kind == "deblur":
                output, target = inputs[0], read_png(prepared / "sharp" / "test" / name / frame_name(center))
            else:
                output = np.round((inputs[0] + inputs[1]) / 2)
                target = read_png(prepared / "sharp" / "test" / name / frame_name(center + BLUR.stride // 2))
            expected = peak_signal_noise_ratio(target, output.astype(np.uint8), data_range=255)
            # interp: a half-integer mean may round the other way in float32 (another target is ~20 dB off)
            tolerance = 1e-6 if row.kind == "deblur" else 0.5
            assert row.psnr == pytest.approx(expected, abs=tolerance), (name, row.kind, row.k)


def test_the_viewer_plays_twelve_inputs_in_order(tmp_path):
    """samples.csv rows written shuffled, k unpadded: the viewer's frames go 0, 0½, 1, ..., 10½, 11."""
    image = np.zeros((4, 4, 3), np.uint8)
    rows = []
    for k in range(12):
        for kind in ("deblur", "interp")[: 1 if k == 11 else 2]:
            for rel in (f"in{k}.png", f"gt_{kind}{k}.png", f"res/samples/{kind}{k}.png"):
                write_png(tmp_path / rel, image)
            rows.append({"clip": "clip10", "k": k, "kind": kind, "output": f"res/samples/{kind}{k}.png",
                         "inputs": f"in{k}.png", "target": f"gt_{kind}{k}.png"})
    random.Random(2).shuffle(rows)
    pd.DataFrame(rows).to_csv(tmp_path / "res" / "samples" / "samples.csv", index=False)
    viewer, _ = viewer_set(tmp_path, "synth", "mixed", {"m": tmp_path / "res"})
    (clip,) = viewer["clips"]
    expected = [label for k in range(12) for label in (f"frame {k} (deblurred)", f"frame {k}½ (interpolated)")][:-1]
    assert [f["label"] for f in clip["frames"]] == expected
