"""Issue 23: BIN, the NAFNet-style deblurring method and deblur-then-interpolate cascades.

The method contract itself is checked for every method by tests/test_methods.py; here: the
published sizes, BIN's window and recurrence, and that a cascade is its two components run one
after the other, from their own checkpoints."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
import torch
from conftest import git_repo, run, tiny_params, write_clip
from test_evaluation import make_clip
from test_methods import assert_contract, perturbed
from test_recipe import sharp  # noqa: F401 (a fixture)

from alabench.cascade import Cascade, cascade_method, find_cascade
from alabench.config import CascadeParams, ParamError, parse_params
from alabench.evaluation import checkpoint_path, evaluate_method
from alabench.inference import infer_clip
from alabench.methods import MethodError, Recurrent, build_model, discover, parameter_count, with_method_options
from stages.methods import listing

FOUND = discover()
PARAMS = parse_params(tiny_params())


def test_published_sizes_have_the_published_parameter_counts():
    # laomao0/BIN bin_stage4_lstm(): 11,441,668 (counted by instantiating the authors' model);
    # NAFNet-GoPro-width32: 17.11M (Chen et al. 2022, Table 10).
    params = dataclasses.replace(PARAMS, methods={k: v for k, v in PARAMS.methods.items() if k not in ("bin", "nafnet")})
    assert parameter_count(build_model(FOUND.methods["bin"], params)) == 11_441_668
    assert round(parameter_count(build_model(FOUND.methods["nafnet"], params)) / 1e6, 2) == 17.11


def bin_model(recurrent: bool = True, carry_state: bool = False) -> torch.nn.Module:
    params = with_method_options(PARAMS, "bin", recurrent=recurrent, carry_state=carry_state)
    torch.manual_seed(0)
    return perturbed(build_model(FOUND.methods["bin"], params), 1).eval()


def test_bin_window_of_six_and_its_recurrent_state():
    model = bin_model()
    assert model.window == 6
    frames = torch.rand(1, 6, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        d1, i1 = model(frames)
        for p in model.cells.parameters():  # the inter-pyramid recurrent module alone
            p.add_(0.1)
        d2, i2 = model(frames)
    # slot 3 and the middle after it come from the second pass, fed by the state the first hands on;
    # slot 2 and the middle after it from the first pass, which has no state yet
    assert (d1[:, 3] - d2[:, 3]).abs().max() > 1e-4 and (i1[:, 3] - i2[:, 3]).abs().max() > 1e-4
    torch.testing.assert_close(d1[:, 2], d2[:, 2])
    torch.testing.assert_close(i1[:, 2], i2[:, 2])
    # and the first pass never sees input 5
    later = frames.clone()
    later[:, 5] = 0
    with torch.no_grad():
        d3, i3 = model(later)
    torch.testing.assert_close(d3[:, 2], d2[:, 2])
    torch.testing.assert_close(i3[:, 2], i2[:, 2])
    with pytest.raises(ValueError, match="windows of 2 to 6 inputs"):
        model(torch.rand(1, 7, 3, 8, 8))


def test_bin_returns_frames_in_range_once_trained_and_raw_estimates_to_its_loss():
    """A BIN that overshoots (every level's output pushed up by 2) still hands clip inference
    frames in [0, 1], as the evaluation requires; training and the next pass see the unbounded values
    (without the ConvLSTM cells, whose tanh would bound them anyway)."""
    model = bin_model(recurrent=False, carry_state=True)
    with torch.no_grad():
        for level in model.levels:
            level.out.bias.add_(2.0)
    frames = torch.rand(1, 6, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        deblur, interp = model(frames)
        kept, middle, state = model.step(frames, None)
        assert float(model.train()(frames)[1].max()) > 1.5
    assert all(0 <= float(x.min()) and float(x.max()) <= 1 for x in (deblur[:, 1:5], interp, kept, middle))
    assert float(max(h.max() for h in state[0])) > 1  # the state hands the raw estimates on


def test_bin_on_a_short_window_is_its_centre_replicate_padded_to_six():
    model = bin_model(recurrent=False)
    three = torch.rand(2, 3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    six = three[:, [0, 0, 1, 2, 2, 2]]  # centre 1 lands on slot 2
    with torch.no_grad():
        (d3, i3), (d6, i6) = model(three), model(six)
    torch.testing.assert_close(d3, d6[:, 1:4])
    torch.testing.assert_close(i3, i6[:, 1:3])


def components(deblur: str, interpolate: str, params=PARAMS) -> tuple[Cascade, torch.nn.Module, torch.nn.Module]:
    """A cascade whose two parts are nudged (their zero-initialised outputs would hide them), and the parts."""
    method = cascade_method(CascadeParams(deblur, interpolate), FOUND)
    torch.manual_seed(0)
    cascade = build_model(method, params)
    for k, part in enumerate(cascade.parts.values()):
        perturbed(part, 5 + k).eval()
    return cascade.eval(), cascade.parts[deblur], cascade.parts[interpolate]


@pytest.mark.parametrize("deblur, interpolate", [("nafnet", "superslomo"), ("alanet", "cain"), ("bin", "superslomo")])
@pytest.mark.parametrize("chained", [True, False])  # the parts run in turn over the clip / the windowed forward
def test_a_cascade_is_its_components_run_one_after_the_other(deblur, interpolate, chained):
    cascade, d, i = components(deblur, interpolate)
    clip = torch.rand(6, 3, 20, 28, generator=torch.Generator().manual_seed(3))
    together = infer_clip(cascade, clip, batch=2, reuse=chained)
    # each part as clip inference runs it alone (reuse=False: window by window, no handed-on state)
    deblurred = infer_clip(d, clip, batch=2, reuse=chained).deblur.clamp(0, 1)
    torch.testing.assert_close(together.deblur, deblurred, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(together.interp, infer_clip(i, deblurred, batch=2, reuse=chained).interp,
                               rtol=1e-4, atol=1e-5)


def test_a_cascade_keeps_the_method_contract():
    method = cascade_method(CascadeParams("nafnet", "superslomo"), FOUND)
    assert method.name == "cascade_nafnet_superslomo" and method.uses == ("nafnet", "superslomo")
    assert not method.trains
    assert_contract(method, PARAMS)
    assert cascade_method(CascadeParams("nafnet", "flow_interp"), FOUND).uses == ("nafnet",)


def test_cascade_entries_that_cannot_work_are_refused_by_name():
    with pytest.raises(ParamError, match="superslomo does not address deblur .* methods that do: .*nafnet"):
        cascade_method(CascadeParams("superslomo", "cain"), FOUND)
    with pytest.raises(ParamError, match="deblur and interpolate both name alanet"):
        cascade_method(CascadeParams("alanet", "alanet"), FOUND)
    with pytest.raises(MethodError, match="cascade_nafnett_cain: deblur: unknown method 'nafnett'. Did you mean 'nafnet'"):
        cascade_method(CascadeParams("nafnett", "cain"), FOUND)
    params = dataclasses.replace(PARAMS, evaluate=dataclasses.replace(
        PARAMS.evaluate, cascades=(CascadeParams("nafnet", "cain"), CascadeParams("nafnet", "flow_interp"))))
    assert find_cascade("alanet", params, FOUND, "synth") is None
    with pytest.raises(ParamError, match="nafnet trains, so it must be listed in train.methods"):
        find_cascade("cascade_nafnet_cain", params, FOUND, "synth")
    params = dataclasses.replace(params, train=dataclasses.replace(params.train, methods=("nafnet", "cain")))
    assert find_cascade("cascade_nafnet_cain", params, FOUND, "synth").uses == ("nafnet", "cain")
    with pytest.raises(ParamError, match="flow_interp does not train"):
        find_cascade("cascade_nafnet_flow_interp", params, FOUND, "synth")
    with pytest.raises(ParamError, match="not in train.datasets"):
        find_cascade("cascade_nafnet_cain", params, FOUND, "adobe240")
    with pytest.raises(ParamError, match=r"evaluate.cascades\[0\]"):
        parse_params({**tiny_params(), "evaluate": {**tiny_params()["evaluate"], "cascades": [{"deblur": "nafnet"}]}})


def test_a_cascade_is_evaluated_from_each_components_checkpoint_of_each_seed(tmp_path, monkeypatch, weights_dir):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "weights").symlink_to(weights_dir)
    params = dataclasses.replace(PARAMS, train=dataclasses.replace(PARAMS.train, seeds=(0, 1)))
    method = cascade_method(CascadeParams("nafnet", "superslomo"), FOUND)
    for seed in (0, 1):  # what train@<part>-synth-<seed> writes: nudged weights, other per seed
        for k, name in enumerate(method.uses):
            torch.manual_seed(0)
            part = perturbed(build_model(FOUND.methods[name], params), 10 * seed + k)
            path = checkpoint_path("synth", name, seed)
            path.parent.mkdir(parents=True)
            torch.save({"method": name, "model": part.state_dict()}, path)
    clips = [make_clip("a", [True, True, True], 0)]
    summary = {"device": "cpu"}
    frames = evaluate_method(method, params, "synth", clips, summary).frames
    assert summary["checkpoints"] == [f"checkpoints/synth/{n}/seed{s}/model.pt" for n in method.uses for s in (0, 1)]
    by_seed = {s: frames[frames.seed == s].psnr.to_numpy() for s in (0, 1)}
    assert len(by_seed[0]) == len(by_seed[1]) == 3 + 2
    assert (by_seed[0] != by_seed[1]).any()  # each seed's own weights were loaded
    (tmp_path / checkpoint_path("synth", "superslomo", 1)).unlink()
    with pytest.raises(MethodError, match="no checkpoint for superslomo"):
        evaluate_method(method, params, "synth", clips, {"device": "cpu"})


def test_each_measured_row_names_its_dagger_row():
    from alabench import paper
    from alabench.report import counterpart_note

    assert set(paper.MEASURED_AS) <= {row.method for row in paper.TABLE2}
    assert set(paper.MEASURED_AS.values()) <= set(FOUND.methods)
    assert counterpart_note("bin", paper.TABLE2)["text"] == "paper row: BIN₄ [25]"
    assert counterpart_note("nafnet", paper.TABLE2) is None
    assert counterpart_note("bin", paper.TABLE3) is None  # no BIN row in the ablation table


def test_a_trained_row_says_its_share_of_the_published_size_and_whether_validation_still_rose(tmp_path):
    """Issue 34: BIN's row says what it is (a fraction of the published model, stopped while learning)."""
    from alabench import paper
    from alabench.layout import checkpoint, training_dir
    from alabench.report.results import last_epoch_rise
    from alabench.report.rows import trained_note
    import pandas as pd

    for seed, joints in ((0, [22.0, 22.5, 22.9]), (1, [22.0, 22.6, 22.8])):  # last epochs: +0.4, +0.2 dB
        training_dir("synth", "bin", seed, tmp_path).mkdir(parents=True)
        pd.DataFrame({"epoch": [1, 2, 3], "joint_psnr": joints}).to_csv(
            training_dir("synth", "bin", seed, tmp_path) / "history.csv", index=False)
        checkpoint("synth", "bin", seed, tmp_path).parent.mkdir(parents=True)
        checkpoint("synth", "bin", seed, tmp_path).write_bytes(b"")
    rise = last_epoch_rise(tmp_path, "synth", "bin")
    assert rise == pytest.approx(0.3)
    note = trained_note("bin", {"trains": True, "parameters": 286_042}, rise, paper.TABLE2)
    assert note["text"] == "paper row: BIN₄ [25] · 2.5 % of the published size · validation still rising (+0.30 dB at its last epoch)"
    assert "286,042 parameters here, 11,441,668 in the authors' model" in note["title"]
    levelled = trained_note("bin", {"trains": True, "parameters": 286_042}, -0.02, paper.TABLE2)
    assert levelled["text"].endswith("validation levelled off")
    assert trained_note("bin", {"trains": False, "parameters": 11_441_668}, None, paper.TABLE2)["text"] == \
        "paper row: BIN₄ [25]"  # released weights or untrained: no share, no training to judge
    assert last_epoch_rise(tmp_path, "synth", "nafnet") is None


@pytest.mark.pipeline
def test_the_cascade_stage_depends_on_both_components_checkpoints(tmp_path):
    import shutil
    import subprocess
    import sys

    import yaml
    from conftest import REPO

    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    params = tiny_params()
    params["evaluate"]["cascades"] = [{"deblur": "nafnet", "interpolate": "superslomo"}]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    out = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--all"], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    stages = [line.split()[0] for line in out.splitlines() if line.startswith("evaluate_cascade@")]
    assert stages == ["evaluate_cascade@cascade0-synth-all_blurry", "evaluate_cascade@cascade0-synth-mixed"]
    stage = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]["evaluate_cascade"]
    assert "--method cascade_${item.cascade.deblur}_${item.cascade.interpolate}" in stage["cmd"]
    assert {"checkpoints/${item.dataset}/${item.cascade.deblur}",
            "checkpoints/${item.dataset}/${item.cascade.interpolate}"} <= set(stage["deps"])
    shown = subprocess.run([sys.executable, "-m", "dvc", "status", "evaluate_cascade@cascade0-synth-mixed"],
                           cwd=tmp_path, capture_output=True, text=True).stdout
    assert "checkpoints/synth/nafnet" in shown and "checkpoints/synth/superslomo" in shown


def test_clip_inference_deblurs_each_input_once_through_the_chain():
    cascade, d, _ = components("nafnet", "superslomo")
    seen = []
    deblur = d.deblur
    d.deblur = lambda frames: seen.append(len(frames)) or deblur(frames)  # count the frames deblurred
    clip = torch.rand(7, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    infer_clip(cascade, clip, batch=3)
    assert sum(seen) == 7
    seen.clear()
    infer_clip(cascade, clip, batch=3, reuse=False)  # the windowed forward: 4 slots of 2 frames, 7 windows
    assert sum(seen) == 7 * cascade.window * d.window == 56


def test_bin_with_carry_state_hands_its_state_along_the_whole_clip_in_clip_inference():
    model = bin_model(carry_state=True)
    clip = torch.rand(9, 3, 16, 20, generator=torch.Generator().manual_seed(6))
    changed = clip.clone()
    changed[0] = 1 - changed[0]
    with torch.no_grad():
        # the clip's first window (inputs 0, 0, 0, 0, 1, 2; its pass on the last five), no state yet:
        # clip inference keeps what the training forward's first pass hands out
        first, middle, _ = model.step(clip[[0, 0, 0, 0, 1, 2]][None], None)
        deblur, interp = model(clip[[0, 0, 0, 1, 2, 3]][None])
        torch.testing.assert_close(first, deblur[:, 2])
        torch.testing.assert_close(middle, interp[:, 2])
    recurrent, again = infer_clip(model, clip), infer_clip(model, changed)
    windowed, windowed_again = infer_clip(model, clip, reuse=False), infer_clip(model, changed, reuse=False)
    # input 0 is outside the windows of inputs 5 and later: only the handed-on state carries it there
    assert (recurrent.interp[6] - again.interp[6]).abs().max() > 1e-6
    assert (recurrent.deblur[7] - again.deblur[7]).abs().max() > 1e-6
    torch.testing.assert_close(windowed.interp[6], windowed_again.interp[6])
    assert isinstance(model, Recurrent) and not isinstance(build_model(FOUND.methods["alanet"], PARAMS), Recurrent)


@pytest.mark.pipeline
@pytest.mark.parametrize("window, frames", [(None, 53), (3, 53), (None, 45)])
def test_bin_trains_on_its_own_six_input_windows(tmp_path, window, frames):
    """The train stage takes BIN's ``window`` option (published 6) over ``train_data.window`` (3), so
    its second pass learns from a state made of real frames; clips too short for it are refused by name."""
    params = tiny_params()
    params["train"]["methods"] = ["bin"]
    params["train_data"].update(val_windows_per_clip=1)
    if window:
        params["methods"]["bin"]["window"] = window
    repo = git_repo(tmp_path / "repo", params)
    rng = np.random.default_rng(0)
    for i in range(3):  # two train clips, one held out for validation
        base = rng.integers(0, 256, size=(1, 24, 24, 3))
        write_clip(repo / "data/sharp/synth/train" / f"c{i}",
                   np.clip(base + rng.integers(-30, 30, size=(frames, 24, 24, 3)), 0, 255).astype(np.uint8))
    result = run([sys.executable, "-m", "stages.train", "--method", "bin", "--dataset", "synth", "--seed", "0"], repo,
                 check=False)
    if frames < 51:
        assert result.returncode != 0 and "45 sharp frames are shorter than one training window (51 frames: 6 " \
            "inputs" in result.stderr and "`window` option" in result.stderr, result.stderr
        return
    assert result.returncode == 0, result.stderr
    inputs = window or 6
    per_clip = frames - (inputs - 1) * 8 - 11 + 1
    assert f"{2 * per_clip} training windows of {inputs} inputs" in result.stderr, result.stderr
    saved = torch.load(repo / "checkpoints/synth/bin/seed0/model.pt", weights_only=True)
    assert saved["config"]["train_data"]["window"] == inputs  # and so in the resume key


def test_the_method_listing_names_the_cascades_configured_or_how_to_make_one():
    lines, problems = listing(FOUND, PARAMS)  # no cascades configured: the listing says how to compose one
    assert problems == 0 and any(line.startswith("cascades: none in evaluate.cascades") for line in lines), lines
    parts = next(line for line in lines if line.strip().startswith("deblur:"))
    assert "nafnet" in parts.split(";")[0] and "superslomo" in parts.split(";")[1] and "bin" in parts, parts
    configured = dataclasses.replace(PARAMS, evaluate=dataclasses.replace(
        PARAMS.evaluate, cascades=(CascadeParams("nafnet", "superslomo"),)))
    configured = dataclasses.replace(configured, train=dataclasses.replace(
        configured.train, methods=(*configured.train.methods, "nafnet", "superslomo")))
    lines, problems = listing(FOUND, configured)
    assert problems == 0 and any(line.split()[:1] == ["cascade_nafnet_superslomo"] for line in lines), lines


def test_a_tuned_cascade_fine_tunes_only_its_interpolator_from_both_checkpoints(sharp, tmp_path, monkeypatch,  # noqa: F811
                                                                               weights_dir):
    """Issue 34, a fair cascade: the twin starts from both components' checkpoints of the seed, trains the
    interpolator on the frozen deblurrer's outputs (through the train stage), and is scored with the result."""
    from test_recipe import stage, workdir

    from alabench.cascade import tuned_cascade_method

    root = workdir(sharp, tmp_path)
    (root / "data" / "weights").symlink_to(weights_dir)
    data = tiny_params()
    data["train"].update(methods=["nafnet", "superslomo"], epochs=3, lr_schedule="step", lr_milestones=[])
    data["evaluate"]["cascades"] = [{"deblur": "nafnet", "interpolate": "superslomo", "tune_epochs": 1}]
    params = parse_params(data)
    start = {}
    for k, name in enumerate(("nafnet", "superslomo")):  # what train@<part>-synth-0 writes
        torch.manual_seed(0)
        part = perturbed(build_model(FOUND.methods[name], params), k + 1)
        start[name] = {key: v.clone() for key, v in part.state_dict().items()}
        path = root / checkpoint_path("synth", name, 0)
        path.parent.mkdir(parents=True)
        torch.save({"method": name, "model": part.state_dict()}, path)
    stage(root, monkeypatch, data, "cascade_nafnet_superslomo_tuned")
    saved = torch.load(root / checkpoint_path("synth", "cascade_nafnet_superslomo_tuned", 0), weights_only=True)
    assert len(saved["history"]) == 1  # tune_epochs, not train.epochs
    tuned = saved["model"]
    deblur = {k.split(".", 2)[2]: v for k, v in tuned.items() if k.startswith("parts.nafnet.")}
    interp = {k.split(".", 2)[2]: v for k, v in tuned.items() if k.startswith("parts.superslomo.")}
    assert deblur.keys() == start["nafnet"].keys() and all(torch.equal(deblur[k], start["nafnet"][k]) for k in deblur)
    assert any(not torch.equal(interp[k], start["superslomo"][k]) for k in interp)  # the interpolator learnt
    method = tuned_cascade_method(params.evaluate.cascades[0], FOUND)
    summary = {"device": "cpu"}
    frames = evaluate_method(method, params, "synth", [make_clip("a", [True, True, True], 0)], summary).frames
    assert "checkpoints/synth/cascade_nafnet_superslomo_tuned/seed0/model.pt" in summary["checkpoints"]
    plain = evaluate_method(cascade_method(params.evaluate.cascades[0], FOUND), params, "synth",
                            [make_clip("a", [True, True, True], 0)], {"device": "cpu"}).frames
    assert (frames[frames.kind == "deblur"].psnr.to_numpy() == plain[plain.kind == "deblur"].psnr.to_numpy()).all()
    assert (frames[frames.kind == "interp"].psnr.to_numpy() != plain[plain.kind == "interp"].psnr.to_numpy()).any()
