"""One training run, prepared by one function (alabench.training_run): the train stage and
bench/train.py hand the loop the same run, and a method's options change training only through the
fields it declares as overrides (alabench.training.overrides), never by a name that happens to match."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from dataclasses import dataclass

import pytest
import torch
import yaml
from conftest import tiny_params
from test_recipe import FakeRun, sharp, stage_params, workdir  # noqa: F401 (sharp: a fixture)
from torch import nn

import alabench.training_run
import bench.train
import stages.train
from alabench.config import load_params, parse_params
from alabench.methods import TASKS, Method, with_method_options
from alabench.training import fingerprint, overrides, with_overrides
from alabench.training_run import code_fingerprint, prepare_training


@dataclass(frozen=True)
class Unrelated:
    """Options that merely share the names of training keys: a filter's temporal window, a gain."""

    window: int = 5
    lr: float = 0.5


@dataclass(frozen=True)
class Declared:
    window: int = overrides("train_data.window", 4)
    rate: float = overrides("train.lr", 0.25)  # any field name: the declaration counts, not the name


class Tiny(nn.Module):
    window = 2

    def __init__(self, options: object) -> None:
        super().__init__()
        self.config, self.conv = options, nn.Conv2d(3, 3, 1)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        deblur = frames + self.conv(frames.flatten(0, 1)).unflatten(0, frames.shape[:2])
        return deblur, (deblur[:, 1:] + deblur[:, :-1]) / 2


def tiny_method(options: type) -> Method:
    return Method(name="probe", tasks=TASKS, trains=True, options=options, build=lambda params, o: Tiny(o))


@pytest.mark.parametrize("options, window, lr", [(Unrelated, None, None), (Declared, 4, 0.25)])
def test_only_declared_options_override_training(sharp, tmp_path, monkeypatch, options, window, lr):  # noqa: F811
    data = stage_params("alanet", {})
    monkeypatch.setattr(alabench.training_run, "get_method", lambda name: tiny_method(options))
    params = with_method_options(load_params_from(tmp_path, data), "probe")
    run = prepare_training(params, "probe", "synth", 0, root=workdir(sharp, tmp_path))
    assert run.train_data.window == (window or params.train_data.window) == run.config["train_data"]["window"]
    assert run.train.lr == (lr or params.train.lr) == run.config["train"]["lr"]
    assert run.train_set[0]["inputs"].shape[0] == run.train_data.window  # the windows the loop is given
    if options is Unrelated:
        assert (run.train, run.train_data) == (params.train, params.train_data)


def test_an_override_must_name_a_training_key():
    with pytest.raises(TypeError, match=r"overrides\('train.rate'\): not a key of params.yaml's train or train_data"):
        overrides("train.rate", 0.0)
    with pytest.raises(TypeError, match=r"overrides\('blur.window'\)"):
        overrides("blur.window", 0)
    train = parse_params(tiny_params()).train
    assert with_overrides(train, "train", None) is train


def load_params_from(tmp_path, data: dict):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return load_params(tmp_path / "params.yaml")


class Captured(Exception):
    """Raised by the recording loop: what it was given is all the test needs."""


def recording_train(into: dict):
    def train(model, loss, train_set, val_set, cfg, dist, checkpoint, config, seed=0, **_):
        into.update(model=model, loss=loss, train_set=train_set, val_set=val_set, cfg=cfg, config=config, seed=seed)
        raise Captured
    return train


def test_the_stage_and_the_bench_hand_the_loop_the_same_run(sharp, tmp_path, monkeypatch):  # noqa: F811
    """Same model weights, loss, schedule (but the precision and checkpoint interval the bench varies),
    windows and resume key, for a method with its own learning rate (cain) and one with its own
    training window (bin)."""
    root = workdir(sharp, tmp_path)
    for method, options in (("cain", {"lr": 3e-4}), ("bin", {"window": 4})):
        data = stage_params(method, options)
        load_params_from(root, data)
        monkeypatch.chdir(root)
        monkeypatch.setattr(stages.train, "mlflow_run", lambda *a, **k: contextlib.nullcontext(FakeRun()))
        stage, timed = {}, {}
        monkeypatch.setattr(stages.train, "train", recording_train(stage))
        monkeypatch.setattr(bench.train, "train", recording_train(timed))
        threads = torch.get_num_threads()
        try:
            with pytest.raises(Captured):
                stages.train.main(method, "synth", 0)
        finally:
            torch.set_num_threads(threads)  # the stage sets train.threads for the whole process
        with pytest.raises(Captured):
            bench.train.run(load_params(), method, "float32", steps=1)
        assert timed["config"] == stage["config"] and timed["seed"] == stage["seed"] == 0
        assert dataclasses.replace(timed["cfg"], precision=stage["cfg"].precision,
                                   checkpoint_every=stage["cfg"].checkpoint_every) == stage["cfg"]
        assert stage["cfg"].lr == options.get("lr", data["train"]["lr"])
        assert type(timed["loss"]) is type(stage["loss"])
        a, b = stage["model"].state_dict(), timed["model"].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        for key in ("train_set", "val_set"):
            assert len(timed[key]) == len(stage[key]) > 0
            assert torch.equal(timed[key][0]["inputs"], stage[key][0]["inputs"])
        assert stage["train_set"][0]["inputs"].shape[0] == options.get("window", data["train_data"]["window"])


def test_the_history_follows_a_tracked_knockout_and_a_wrong_name_is_refused_before_training(sharp, tmp_path):  # noqa: F811
    """train.track_knockout: each epoch's row holds the knock-out's validation cost (issue 36: when does the
    latent start to matter?); a name the model does not declare stops the run before its first step."""
    import torch

    from alabench.config import ParamError, parse_params
    from alabench.training import knockout_cost, validate
    from alabench.training_run import prepare_training

    root = workdir(sharp, tmp_path)
    raw = tiny_params()
    raw["train"]["track_knockout"] = "latent_zeroed"
    run = prepare_training(parse_params(raw), "alanet", "synth", 0, root)
    with torch.no_grad():  # an untrained head is zero: redraw it so that the latent reaches the output
        for p in run.model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    intact = validate(run.model, run.val_set, torch.device("cpu"))
    cost = knockout_cost(run.model, run.val_set, torch.device("cpu"), intact, "latent_zeroed")
    assert set(cost) == {"latent_zeroed_cost_deblur", "latent_zeroed_cost_interp", "latent_zeroed_cost_joint"}
    assert cost["latent_zeroed_cost_joint"] != 0.0
    assert validate(run.model, run.val_set, torch.device("cpu")) == intact  # the knock-out was undone
    assert knockout_cost(run.model, run.val_set, torch.device("cpu"), intact, "") == {}
    raw["train"]["track_knockout"] = "latent_zero"
    with pytest.raises(ParamError, match=r"train.track_knockout = 'latent_zero': alanet declares the knock-outs"):
        prepare_training(parse_params(raw), "alanet", "synth", 0, root)


def test_the_resume_key_holds_the_code_so_that_an_edit_starts_training_over(sharp, tmp_path, monkeypatch):  # noqa: F811
    """DVC reruns a train stage whose code changed; a resume key without the code would let the rerun
    resume the finished checkpoint (same params, same frames) and return the old model."""
    checkout = tmp_path / "checkout"
    for package in alabench.training_run.CODE:
        shutil.copytree(alabench.training_run.ROOT / package, checkout / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    assert code_fingerprint(checkout) == code_fingerprint()  # the bytes, not where they lie
    monkeypatch.setattr(alabench.training_run, "get_method", lambda name: tiny_method(Unrelated))
    params = with_method_options(load_params_from(tmp_path, stage_params("alanet", {})), "probe")
    root = workdir(sharp, tmp_path)
    before = prepare_training(params, "probe", "synth", 0, root=root).config
    assert before["code"] == code_fingerprint()
    edited = checkout / "models" / "losses.py"
    edited.write_text(edited.read_text() + "\n# an edit that changes nothing the model computes\n")
    monkeypatch.setattr(alabench.training_run, "ROOT", checkout)
    after = prepare_training(params, "probe", "synth", 0, root=root).config
    assert after["code"] == code_fingerprint(checkout) != before["code"]
    assert fingerprint(after) != fingerprint(before)  # the checkpoint is not resumed (test_training.py)
    assert {k: v for k, v in after.items() if k != "code"} == {k: v for k, v in before.items() if k != "code"}
