"""Per-frame scores, both averaging conventions, the PSNR cap and the bootstrap."""

from __future__ import annotations

import errno
import json
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_params
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from test_methods import ECHO, write_method

from alabench import evaluation, stats
from alabench.cli import run_stage
from alabench.config import parse_params
from alabench.datasets import TestClip as PreparedClip
from alabench.evaluation import Sample, evaluate_clips, evaluate_method, sample_positions, write_results
from alabench.layout import checkpoint
from alabench.methods import MethodFailed, build_model, discover, get_method
from alabench.metrics import Lpips
from alabench.summary import COLUMNS, joint_line, read_frames, summarize
from alabench.vocabulary import headline_convention
from alabench.training import save_checkpoint

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
    assert summary["psnr_capped"] == {"deblur": 3, "interp": 0, "joint": 3, "pooled": 3}
    for convention in ("per_clip", "per_frame"):
        assert summary["by_input"]["sharp"][convention]["deblur"]["psnr"]["mean"] == 50.0
        assert summary["by_input"]["sharp"][convention]["deblur"]["psnr"]["ci"] == [50.0, 50.0]
        assert summary["by_input"]["sharp"][convention]["interp"]["psnr"]["mean"] is None  # no such frame
        assert summary["averages"][convention]["deblur"]["psnr"]["mean"] < 50.0
    assert summary["by_input"]["sharp"]["frames"] == {"deblur": 3, "interp": 0, "joint": 3, "pooled": 3}
    json.dumps(summary, allow_nan=False)  # no inf or NaN reaches summary.json
    samples = pd.read_csv(tmp_path / "out" / "samples" / "samples.csv")
    assert len(samples) == 4 and all((tmp_path / "out" / "samples" / p.split("/")[-1]).is_file() for p in samples.output)


def hand_made(rows: list[tuple], seed: object = "") -> pd.DataFrame:
    """frames.csv rows (clip, k, kind, input_blurry, psnr, ssim, lpips), each clip its own video."""
    return pd.DataFrame([(seed, r[0], *r) for r in rows], columns=COLUMNS)


def test_every_averaging_convention_on_a_hand_made_table(tmp_path):
    rows = [  # clip a: three frames, clip b: one deblurred frame, clip c: two
        ("a", 0, "deblur", 1, 30.0, 0.8, 0.1), ("a", 1, "deblur", 0, 40.0, 0.9, 0.2), ("a", 0, "interp", 1, 20.0, 0.7, 0.3),
        ("b", 0, "deblur", 1, 10.0, 0.5, 0.4),
        ("c", 0, "deblur", 0, math.inf, 1.0, 0.0), ("c", 0, "interp", 0, 60.0, 0.95, 0.05),
    ]
    path = tmp_path / "frames.csv"
    hand_made(rows).to_csv(path, index=False)
    frames = read_frames(path)
    s = summarize(frames, psnr_cap=50.0, bootstrap=2000, confidence=0.9, seed=3)
    per_clip, per_frame, mse = (s["averages"][c] for c in ("per_clip", "per_frame", "per_clip_mse"))
    assert per_frame["deblur"]["psnr"]["mean"] == pytest.approx((30 + 40 + 10 + 50) / 4)
    assert per_clip["deblur"]["psnr"]["mean"] == pytest.approx((35 + 10 + 50) / 3)
    assert per_frame["interp"]["psnr"]["mean"] == pytest.approx((20 + 50) / 2)
    assert per_clip["interp"]["psnr"]["mean"] == pytest.approx((20 + 50) / 2)  # clip b has none
    # joint as published: the mean of the deblurring and interpolation means; pooled: all frames together
    assert per_clip["joint"]["psnr"]["mean"] == pytest.approx(((35 + 10 + 50) / 3 + (20 + 50) / 2) / 2)
    assert per_frame["joint"]["psnr"]["mean"] == pytest.approx(((30 + 40 + 10 + 50) / 4 + (20 + 50) / 2) / 2)
    assert per_frame["pooled"]["psnr"]["mean"] == pytest.approx((30 + 40 + 20 + 10 + 50 + 50) / 6)
    assert per_clip["pooled"]["psnr"]["mean"] == pytest.approx((30 + 10 + 50) / 3)
    assert per_clip["joint"]["ssim"]["mean"] == pytest.approx(((0.85 + 0.5 + 1.0) / 3 + (0.7 + 0.95) / 2) / 2)
    assert per_clip["pooled"]["ssim"]["mean"] == pytest.approx(((0.8 + 0.9 + 0.7) / 3 + 0.5 + 0.975) / 3)
    # per_clip_mse: a clip's PSNR from its mean squared error (clip a: 30 and 40 dB; clip c: exact, so the cap)
    clip_a = 10 * math.log10(2 / (10 ** -3 + 10 ** -4))
    assert mse["deblur"]["psnr"]["mean"] == pytest.approx((clip_a + 10 + 50) / 3)
    assert mse["deblur"]["ssim"] == per_clip["deblur"]["ssim"]
    assert s["psnr_capped"] == {"deblur": 1, "interp": 1, "joint": 2, "pooled": 2}
    assert s["by_input"]["blurry"]["per_frame"]["pooled"]["psnr"]["mean"] == pytest.approx(20)
    assert s["by_input"]["sharp"]["per_clip"]["deblur"]["psnr"]["mean"] == pytest.approx((40 + 50) / 2)
    assert s["units"] == {"unit": "clip", "count": 3} and s["seeds"] == []
    # bootstrap over clips: the interval lies between the extreme clip averages and holds the mean
    lo, hi = per_clip["pooled"]["psnr"]["ci"]
    assert 10 <= lo < per_clip["pooled"]["psnr"]["mean"] < hi <= 50
    assert s == summarize(frames, psnr_cap=50.0, bootstrap=2000, confidence=0.9, seed=3)  # seeded
    assert s["averages"] != summarize(frames, psnr_cap=30.0, bootstrap=2000, confidence=0.9, seed=3)["averages"]


def test_the_mixed_headline_does_not_move_with_the_cap():
    """Sharp inputs returned exactly score inf: per_clip follows psnr_cap, per_clip_mse does not."""
    rng = np.random.default_rng(0)
    rows = [(f"c{c}", k, "deblur", int(blurry), rng.uniform(22, 30) if blurry else math.inf, 0.9, 0.1)
            for c in range(8) for k, blurry in enumerate(rng.random(9) < 0.5) if True]
    rows += [(f"c{c}", k, "interp", 1, rng.uniform(20, 28), 0.8, 0.2) for c in range(8) for k in range(8)]
    frames = hand_made(rows)
    at = {cap: summarize(frames, cap, 200, 0.95, 0)["averages"] for cap in (50.0, 100.0)}
    assert abs(at[100.0]["per_clip"]["joint"]["psnr"]["mean"] - at[50.0]["per_clip"]["joint"]["psnr"]["mean"]) > 5
    assert abs(at[100.0]["per_clip_mse"]["joint"]["psnr"]["mean"]
               - at[50.0]["per_clip_mse"]["joint"]["psnr"]["mean"]) < 0.05


def test_the_stage_prints_mixed_in_its_headline_convention():
    """The evaluate stage's line (and stages.score's table) use the protocol's headline, as the
    report's tables do: under mixed, per_clip_mse, not per_clip (capped at psnr_cap by sharp inputs)."""
    rows = [("c0", 0, "deblur", 0, math.inf, 1.0, 0.0), ("c0", 1, "deblur", 1, 24.0, 0.8, 0.2),
            ("c0", 0, "interp", 1, 26.0, 0.7, 0.3), ("c1", 0, "deblur", 1, 22.0, 0.6, 0.4),
            ("c1", 1, "deblur", 0, math.inf, 1.0, 0.0), ("c1", 0, "interp", 1, 28.0, 0.9, 0.1)]
    summary = summarize(hand_made(rows), 60.0, 0, 0.95, 0)
    convention = headline_convention("mixed")
    line = joint_line(summary, convention)
    psnr = {c: summary["averages"][c]["joint"]["psnr"]["mean"] for c in ("per_clip", "per_clip_mse")}
    assert convention == "per_clip_mse" and abs(psnr["per_clip"] - psnr["per_clip_mse"]) > 1
    assert line.startswith(f"joint PSNR {psnr['per_clip_mse']:.2f} dB, SSIM ")
    assert "(per_clip_mse; 2 frames capped at 60 dB)" in line
    assert f"{psnr['per_clip']:.2f}" not in line


def test_the_unit_is_the_video_and_seeds_are_averaged_with_their_spread():
    rows = [("v1-000", 0, "deblur", 1, 20.0, 0.5, 0.5), ("v1-000", 0, "interp", 1, 20.0, 0.5, 0.5),
            ("v1-001", 0, "deblur", 1, 30.0, 0.5, 0.5), ("v1-001", 0, "interp", 1, 30.0, 0.5, 0.5),
            ("v2-000", 0, "deblur", 1, 40.0, 0.5, 0.5), ("v2-000", 0, "interp", 1, 40.0, 0.5, 0.5)]
    one = hand_made(rows)
    one["video"] = one["clip"].str[:2]
    two = one.assign(seed=1, psnr=one["psnr"] + 2.0)
    s = summarize(pd.concat([one.assign(seed=0), two]), 50.0, 500, 0.95, 0)
    assert s["units"] == {"unit": "video", "count": 2} and s["clips"] == 3 and s["seeds"] == ["0", "1"]
    cell = s["averages"]["per_clip"]["joint"]["psnr"]
    # v1 = mean of its two pieces' frames (25), v2 = 40; seeds 0 and 1 (+2 dB): 32.5 and 34.5
    assert cell["seeds"] == {"0": 32.5, "1": 34.5} and cell["mean"] == pytest.approx(33.5)
    assert cell["seed_sd"] == pytest.approx(math.sqrt(2))
    assert 25 <= cell["ci"][0] < 33.5 < cell["ci"][1] <= 42  # resamples whole videos: v1 alone gives 26


def test_the_summary_names_the_photo_unit_and_its_interval_resamples_photos():
    """Issue 36: on synth the unit is the source photo (``photo:<name>`` in frames.csv): summary.json
    says so with the count, and its interval is the percentile of the photo means under resampled photos."""
    rng = np.random.default_rng(5)
    psnr = np.repeat(rng.normal(28.0, 3.0, 6), 2) + rng.normal(0.0, 0.2, 12)  # 6 photos x 2 alike clips
    rows = [(f"c{i:02d}", 0, kind, 1, p, 0.9, 0.1) for i, p in enumerate(psnr) for kind in ("deblur", "interp")]
    frames = hand_made(rows)
    frames["video"] = [f"photo:p{int(clip[1:]) // 2}" for clip in frames["clip"]]
    s = summarize(frames, 50.0, 1000, 0.95, 0)
    assert s["units"] == {"unit": "photo", "count": 6} and s["bootstrap"]["unit"] == "photo" and s["clips"] == 12
    cell = s["averages"]["per_clip"]["joint"]["psnr"]
    boot = stats.Resamples.draw(6, 1, 1000, 0).units @ psnr.reshape(6, 2).mean(axis=1) / 6
    assert cell["mean"] == pytest.approx(psnr.mean(), abs=1e-6)
    assert cell["ci"] == pytest.approx(list(np.percentile(boot, [2.5, 97.5])), abs=1e-6)
    by_clip = summarize(frames.assign(video=frames["clip"]), 50.0, 1000, 0.95, 0)
    assert by_clip["units"] == {"unit": "clip", "count": 12}
    lo, hi = by_clip["averages"]["per_clip"]["joint"]["psnr"]["ci"]
    assert hi - lo < 0.85 * (cell["ci"][1] - cell["ci"][0])  # clips taken for independent: too narrow


def test_a_method_in_a_temporary_folder_is_discovered_and_evaluated(tmp_path, lpips):
    write_method(tmp_path / "baselines", "echo_eval", ECHO.format(name="echo_eval"))
    method = discover(tmp_path / "baselines").methods["echo_eval"]
    clips = [make_clip("a", [True, True, False], 4), make_clip("b", [True, True, True, True], 5)]
    scored = evaluate_clips(build_model(method, PARAMS), clips, lpips, batch=3)
    assert len(scored.frames) == 3 + 2 + 4 + 3 and scored.seconds > 0
    summary = summarize(scored.frames, 50.0, 20, 0.95, 0)
    assert summary["frames"] == {"deblur": 7, "interp": 5, "joint": 12, "pooled": 12} and summary["clips"] == 2
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
    assert summary["averages"]["per_frame"]["pooled"]["psnr"]["mean"] == pytest.approx(
        np.minimum(scored.frames.psnr, 50.0).mean(), abs=1e-6)


def small_results(value: float) -> tuple[pd.DataFrame, dict, list[Sample]]:
    frames = hand_made([("a", 0, "deblur", 1, value, 0.5, 0.1), ("a", 0, "interp", 1, value, 0.5, 0.1)])
    samples = [Sample("a", k, "deblur", np.full((8, 8, 3), k, np.uint8), ["in.png"], "gt.png") for k in range(3)]
    return frames, {"status": "ok", "value": value}, samples


def fail_on(monkeypatch, what: str) -> None:
    """A full disk at one write of write_results: frames.csv, summary.json, or the second sample PNG."""
    full = OSError(errno.ENOSPC, "No space left on device")  # as a failed write or close says it: no file name
    if what == "frames.csv":
        monkeypatch.setattr(pd.DataFrame, "to_csv", lambda *a, **k: (_ for _ in ()).throw(full))
    elif what == "summary.json":
        real = Path.write_text
        monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: (_ for _ in ()).throw(full)
                            if self.name == "summary.json" else real(self, *a, **k))
    else:
        real_png, calls = evaluation.write_png, []

        def png(path, image):
            calls.append(path)
            if len(calls) == 2:
                real_png(path, image[:4])  # half a file reaches the disk first
                raise full
            real_png(path, image)
        monkeypatch.setattr(evaluation, "write_png", png)


@pytest.mark.parametrize("what", ["frames.csv", "summary.json", "sample"])
def test_a_full_disk_leaves_the_previous_results_whole_and_says_so(tmp_path, monkeypatch, capsys, what):
    out = tmp_path / "results" / "alanet"
    write_results(out, *small_results(30.0))
    before = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    fail_on(monkeypatch, what)
    with pytest.raises(SystemExit) as stop:
        run_stage("evaluate", lambda: write_results(out, *small_results(20.0)))
    monkeypatch.undo()
    assert stop.value.code == 1
    assert capsys.readouterr().err == (f"error: disk full while writing {out}; free space and rerun (its previous "
                                       f"version, if any, is kept whole)\n")
    assert {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
    assert [p.name for p in out.parent.iterdir()] == ["alanet"]  # no temporary folder left beside it


def test_a_full_disk_naming_no_file_is_one_line(capsys):
    def work():
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(SystemExit):
        run_stage("x", work)
    assert capsys.readouterr().err == "error: no space left on device: free some space and run again\n"


@pytest.mark.parametrize("how", ["truncated", "garbage", "code"])
def test_an_unreadable_model_pt_fails_the_method_not_the_stage(tmp_path, monkeypatch, weights_dir, how):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(weights_dir, tmp_path / "data" / "weights")
    method = get_method("alanet")
    path = checkpoint("synth", "alanet", 0)
    save_checkpoint(path, {"method": "alanet", "model": build_model(method, PARAMS).state_dict()})
    good = path.read_bytes()
    path.write_bytes({"truncated": good[: len(good) // 2], "garbage": bytes(range(256)) * 8,
                      "code": pickle.dumps(print)}[how])
    summary = {"device": "cpu", "checkpoints": []}
    with pytest.raises(MethodFailed) as caught:
        evaluate_method(method, PARAMS, "synth", [make_clip("a", [True, True, False], 4)], summary)
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot be read (") and message.endswith(
        "truncated, damaged or not a file of tensors); delete it and run `dvc repro` to train it again")
    assert "weights_only" not in message


def test_the_change_of_each_sharp_input_is_measured_in_grey_levels():
    """Issue 36's target: a sharp input should come back unchanged (mean |Δ| per deblurred sharp input)."""
    from alabench.evaluation import ClipFrames, score_outputs

    clip = make_clip("a", [False, True, False], 0)
    shifted = np.clip(clip.gt_deblur.astype(int) + 3, 0, 255).astype(np.uint8)  # +3 grey levels, clipped at 255

    def outputs(frames):
        yield ClipFrames(clip, [("deblur", k, frames[k]) for k in range(3)]
                         + [("interp", k, clip.gt_interp[k]) for k in range(2)])

    assert score_outputs(outputs(clip.gt_deblur), None).sharp_change == [0.0, 0.0]  # only the 2 sharp inputs
    expected = [float(np.abs(shifted[k].astype(int) - clip.gt_deblur[k]).mean()) for k in (0, 2)]
    assert score_outputs(outputs(shifted), None).sharp_change == pytest.approx(expected)
    assert 2.9 < expected[0] <= 3.0
