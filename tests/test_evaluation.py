"""Per-frame scores, both averaging conventions, the PSNR cap and the bootstrap."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_params
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from test_methods import ECHO, write_method

from alabench.config import parse_params
from alabench.datasets import TestClip as PreparedClip
from alabench.evaluation import (
    COLUMNS,
    evaluate_clips,
    read_frames,
    sample_positions,
    summarize,
    write_results,
)
from alabench.methods import build_model, discover, get_method
from alabench.metrics import Lpips

PARAMS = parse_params(tiny_params())


def make_clip(name: str, blurry: list[bool], seed: int, size=(32, 48)) -> PreparedClip:
    """Sharp frames are their own ground truth (as under `mixed`); blurry ones are a noisy copy."""
    rng = np.random.default_rng(seed)
    k = len(blurry)
    gt = rng.integers(0, 256, (2 * k - 1, *size, 3), dtype=np.uint8)
    gt_deblur, gt_interp = gt[0::2], gt[1::2]
    noise = rng.integers(-40, 40, gt_deblur.shape)
    inputs = np.where(np.array(blurry)[:, None, None, None], np.clip(gt_deblur + noise, 0, 255), gt_deblur)
    paths = [f"data/x/{name}/{i}.png" for i in range(k)]
    return PreparedClip(name, inputs.astype(np.uint8), np.array(blurry), gt_deblur, gt_interp, paths,
                    [f"gt/{name}/{i}.png" for i in range(k)], [f"gt/{name}/{i}m.png" for i in range(k - 1)])


@pytest.fixture(scope="module")
def lpips(weights_dir):
    return Lpips(weights_dir)


def test_blurry_input_scores_inf_on_sharp_inputs_and_the_cap_in_the_averages(tmp_path, lpips):
    clips = [make_clip("a", [False, True, False, True], 0), make_clip("b", [True, False, True], 1)]
    model = build_model(get_method("blurry_input"), PARAMS)
    scored = evaluate_clips(model, clips, lpips, batch=2, samples=sample_positions(["a", "b"], [4, 3], 2))
    write_results(tmp_path / "out", scored.frames, {"status": "ok"}, scored.samples)
    frames = read_frames(tmp_path / "out" / "frames.csv")
    assert list(frames.columns) == COLUMNS and len(frames) == 4 + 3 + 3 + 2
    deblur = frames[frames.kind == "deblur"]
    sharp = deblur[deblur.input_blurry == 0]
    assert len(sharp) == 3 and np.isinf(sharp.psnr).all() and (sharp.ssim == 1).all() and (sharp.lpips == 0).all()
    assert "inf" in (tmp_path / "out" / "frames.csv").read_text()
    # interp frames: blurry when either neighbour is
    assert frames[frames.kind == "interp"].input_blurry.tolist() == [1, 1, 1, 1, 1]

    summary = summarize(frames, psnr_cap=50.0, bootstrap=100, confidence=0.95, seed=0)
    assert summary["psnr_capped"] == {"deblur": 3, "interp": 0, "joint": 3}
    for convention in ("per_clip", "per_frame"):
        assert summary["by_input"]["sharp"][convention]["deblur"]["psnr"]["mean"] == 50.0
        assert summary["by_input"]["sharp"][convention]["deblur"]["psnr"]["ci"] == [50.0, 50.0]
        assert summary["by_input"]["sharp"][convention]["interp"]["psnr"]["mean"] is None  # no such frame
        assert summary["averages"][convention]["deblur"]["psnr"]["mean"] < 50.0
    assert summary["by_input"]["sharp"]["frames"] == {"deblur": 3, "interp": 0, "joint": 3}
    json.dumps(summary, allow_nan=False)  # no inf or NaN reaches summary.json
    samples = pd.read_csv(tmp_path / "out" / "samples" / "samples.csv")
    assert len(samples) == 4 and all((tmp_path / "out" / "samples" / p.split("/")[-1]).is_file() for p in samples.output)


def test_both_averaging_conventions_on_a_hand_made_table(tmp_path):
    rows = [  # clip a: three frames, clip b: one deblurred frame, clip c: two
        ("a", 0, "deblur", 1, 30.0, 0.8, 0.1), ("a", 1, "deblur", 0, 40.0, 0.9, 0.2), ("a", 0, "interp", 1, 20.0, 0.7, 0.3),
        ("b", 0, "deblur", 1, 10.0, 0.5, 0.4),
        ("c", 0, "deblur", 0, math.inf, 1.0, 0.0), ("c", 0, "interp", 0, 60.0, 0.95, 0.05),
    ]
    path = tmp_path / "frames.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    frames = read_frames(path)
    s = summarize(frames, psnr_cap=50.0, bootstrap=2000, confidence=0.9, seed=3)
    per_clip, per_frame = s["averages"]["per_clip"], s["averages"]["per_frame"]
    assert per_frame["deblur"]["psnr"]["mean"] == pytest.approx((30 + 40 + 10 + 50) / 4)
    assert per_clip["deblur"]["psnr"]["mean"] == pytest.approx((35 + 10 + 50) / 3)
    assert per_frame["interp"]["psnr"]["mean"] == pytest.approx((20 + 50) / 2)
    assert per_clip["interp"]["psnr"]["mean"] == pytest.approx((20 + 50) / 2)  # clip b has none
    assert per_frame["joint"]["psnr"]["mean"] == pytest.approx((30 + 40 + 20 + 10 + 50 + 50) / 6)
    assert per_clip["joint"]["psnr"]["mean"] == pytest.approx((30 + 10 + 50) / 3)
    assert per_clip["joint"]["ssim"]["mean"] == pytest.approx(((0.8 + 0.9 + 0.7) / 3 + 0.5 + 0.975) / 3)
    assert s["psnr_capped"] == {"deblur": 1, "interp": 1, "joint": 2}
    assert s["by_input"]["blurry"]["per_frame"]["joint"]["psnr"]["mean"] == pytest.approx(20)
    assert s["by_input"]["sharp"]["per_clip"]["deblur"]["psnr"]["mean"] == pytest.approx((40 + 50) / 2)
    # bootstrap over clips: the interval lies between the extreme clip averages and holds the mean
    lo, hi = per_clip["joint"]["psnr"]["ci"]
    assert 10 <= lo < per_clip["joint"]["psnr"]["mean"] < hi <= 50
    assert s == summarize(frames, psnr_cap=50.0, bootstrap=2000, confidence=0.9, seed=3)  # seeded
    assert s["averages"] != summarize(frames, psnr_cap=30.0, bootstrap=2000, confidence=0.9, seed=3)["averages"]


def test_a_method_in_a_temporary_folder_is_discovered_and_evaluated(tmp_path, lpips):
    write_method(tmp_path / "baselines", "echo_eval", ECHO.format(name="echo_eval"))
    method = discover(tmp_path / "baselines").methods["echo_eval"]
    clips = [make_clip("a", [True, True, False], 4), make_clip("b", [True, True, True, True], 5)]
    scored = evaluate_clips(build_model(method, PARAMS), clips, lpips, batch=3)
    assert len(scored.frames) == 3 + 2 + 4 + 3 and scored.seconds > 0
    summary = summarize(scored.frames, 50.0, 20, 0.95, 0)
    assert summary["frames"] == {"deblur": 7, "interp": 5, "joint": 12} and summary["clips"] == 2
    # Every score, computed here without the evaluation: echo returns its inputs as deblurred frames
    # and the mean of two neighbours as the frame between them.
    rows = scored.frames.set_index(["clip", "kind", "k"])
    for clip in clips:
        inputs = np.asarray(clip.inputs)
        means = np.round((inputs[:-1].astype(np.float64) + inputs[1:]) / 2).astype(np.uint8)
        for kind, outputs, targets in (("deblur", inputs, clip.gt_deblur), ("interp", means, clip.gt_interp)):
            for k, (out, tgt) in enumerate(zip(outputs, targets)):
                row = rows.loc[(clip.name, kind, k)]
                blurry = clip.blurry[k] if kind == "deblur" else clip.blurry[k] or clip.blurry[k + 1]
                assert row.input_blurry == int(blurry)
                psnr_tolerance = 1e-9 if kind == "deblur" else 0.02  # x.5 means may round the other way in float32
                with np.errstate(divide="ignore"):  # a sharp input is its own target: inf dB
                    expected = peak_signal_noise_ratio(tgt, out, data_range=255)
                assert row.psnr == pytest.approx(expected, abs=psnr_tolerance)
                assert row.ssim == pytest.approx(structural_similarity(tgt, out, data_range=255, channel_axis=2),
                                                 abs=1e-6 if kind == "deblur" else 1e-4)
                assert row.lpips == pytest.approx(lpips(out[None], tgt[None])[0], abs=1e-6 if kind == "deblur" else 1e-3)
    assert summary["averages"]["per_frame"]["joint"]["psnr"]["mean"] == pytest.approx(
        np.minimum(scored.frames.psnr, 50.0).mean(), abs=1e-6)
