"""The shared training loop: schedule, sample order, kill-and-resume, NaN, checkpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from alabench.blur import Eq7
from alabench.config import parse_params
from alabench.datasets import ClipCache, TrainWindows, ValidationWindows
from alabench.training import (Distributed, EpochOrder, TrainingError, load_checkpoint, lr_at_epoch,
                               save_checkpoint, train)
from conftest import random_clip, tiny_params, write_clip
from models.alanet import ALANet, ALANetConfig
from models.losses import ReconstructionLoss

ONE = Distributed(0, 1, torch.device("cpu"))


def train_params(**changes):
    data = tiny_params()
    data["train"].update(dict(epochs=2, batch_size=2, checkpoint_every=1, perceptual_weight=0.0, threads=1))
    data["train"].update(changes)
    return parse_params(data)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(5)
    clips = []
    for i in range(3):
        base = rng.integers(0, 256, size=(1, 32, 32, 3))
        frames = np.clip(base + rng.integers(-20, 20, size=(31, 32, 32, 3)), 0, 255).astype(np.uint8)
        write_clip(root / f"c{i}", frames)
        clips.append(root / f"c{i}")
    params = train_params()
    cache = ClipCache(root / "cache")
    return (TrainWindows(clips[:2], Eq7(), params.train_data, cache),
            ValidationWindows(clips[2:], Eq7(), params.train_data, cache))


def model():
    torch.manual_seed(0)
    return ALANet(ALANetConfig(window=3, width=0.0625, reduction=2))


def run(data, checkpoint: Path, stop: int | None = None, **changes):
    params = train_params(**changes)
    net = model()
    history = train(net, ReconstructionLoss(None, 0), data[0], data[1], params.train, ONE, checkpoint,
                    {"test": 1, **changes}, stop_after_step=stop)
    return net, history


def test_paper_schedule():
    cfg = dataclasses.replace(train_params().train, epochs=200, lr=1e-4)
    assert lr_at_epoch(cfg, 99) == pytest.approx(1e-4)
    assert lr_at_epoch(cfg, 100) == pytest.approx(1e-5)
    assert lr_at_epoch(cfg, 149) == pytest.approx(1e-5)
    assert lr_at_epoch(cfg, 150) == pytest.approx(1e-6)


def test_ranks_split_each_global_batch_exactly():
    single = list(EpochOrder(23, 4, seed=3, epoch=1, dist=ONE))
    assert len(single) == 20 and len(set(single)) == 20  # 5 whole batches, no repeats
    ranks = [list(EpochOrder(23, 4, 3, 1, Distributed(r, 2, torch.device("cpu")))) for r in (0, 1)]
    for k in range(5):
        together = ranks[0][2 * k:2 * k + 2] + ranks[1][2 * k:2 * k + 2]
        assert sorted(together) == sorted(single[4 * k:4 * k + 4])
    assert list(EpochOrder(23, 4, 3, 1, ONE, start_batch=2)) == single[8:]
    assert single != list(EpochOrder(23, 4, seed=3, epoch=2, dist=ONE))


def test_killed_run_resumes_to_identical_weights(data, tmp_path):
    full, history = run(data, tmp_path / "a.pt")
    steps = history[-1]["step"]
    assert steps >= 6 and len(history) == 2
    run(data, tmp_path / "b.pt", stop=steps // 2 + 1)  # killed mid-epoch 2, after its checkpoint
    assert load_checkpoint(tmp_path / "b.pt")["step"] == steps // 2 + 1
    resumed, resumed_history = run(data, tmp_path / "b.pt")
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed_history == history


def test_checkpoint_from_other_params_is_not_resumed(data, tmp_path):
    run(data, tmp_path / "c.pt", stop=2)
    _, history = run(data, tmp_path / "c.pt", lr=0.001)  # other params: starts over
    assert history[0]["step"] == load_checkpoint(tmp_path / "c.pt")["step"] // 2


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    class NanAfter(ReconstructionLoss):
        calls = 0

        def forward(self, outputs, targets):
            parts = super().forward(outputs, targets)
            NanAfter.calls += 1
            if NanAfter.calls > 3:
                parts["total"] = parts["total"] * float("nan")
            return parts

    params = train_params()
    with pytest.raises(TrainingError, match=r"loss became nan at step 4 .*last good checkpoint is kept"):
        train(model(), NanAfter(None, 0), data[0], data[1], params.train, ONE, tmp_path / "n.pt", {})
    state = load_checkpoint(tmp_path / "n.pt")
    assert state["step"] == 3
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_checkpoint_round_trips_with_weights_only(tmp_path):
    net = model()
    save_checkpoint(tmp_path / "m.pt", {"model": net.state_dict(), "config": {"a": [1, 2.5, "x"]}, "step": 3})
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    fresh = ALANet(ALANetConfig(window=3, width=0.0625, reduction=2))
    fresh.load_state_dict(state["model"])
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), fresh.state_dict().values()))
    assert state["config"] == {"a": [1, 2.5, "x"]}


def test_too_small_a_data_set_is_named(data, tmp_path):
    params = train_params(batch_size=1000)
    with pytest.raises(TrainingError, match="fewer than one batch of 1000"):
        train(model(), ReconstructionLoss(None, 0), data[0], data[1], params.train, ONE, tmp_path / "x.pt", {})


def test_validation_reports_the_blurry_input_baseline(data, tmp_path):
    _, history = run(data, tmp_path / "v.pt")
    row = history[-1]
    for key in ("deblur_psnr", "interp_psnr", "joint_psnr", "input_deblur_psnr", "input_joint_ssim"):
        assert np.isfinite(row[key])
