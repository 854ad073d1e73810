"""The training recipe as it reaches the optimiser: each method's learning rate, independent data orders
per (seed, epoch), and the saved history, values included (docs/training.md, "Validation").

The train stage's ``main`` runs in-process on tiny clips in a temporary folder; the optimiser is
recorded at every step (its learning rate, read back from its parameter groups) and the loss at every
step, so the history is checked against what the optimiser and the loss saw, not against the code
that wrote it.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_params, write_clip
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from test_training import baseline_scores

import alabench.training_run
import stages.train
from alabench.blur import Eq7
from alabench.config import parse_params
from alabench.datasets import ClipCache, TrainWindows, ValidationWindows
from alabench.training import VALIDATION_PSNR_CAP, Distributed, EpochOrder

ONE = Distributed(0, 1, torch.device("cpu"))
TRAIN_LR = 1e-3


class RecordingAdam(torch.optim.Adam):
    """Adam that notes, at every step, the learning rate of each parameter group."""

    made: list[RecordingAdam] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lrs: list[list[float]] = []
        RecordingAdam.made.append(self)

    def step(self, closure=None):  # type: ignore[override]
        self.lrs.append([group["lr"] for group in self.param_groups])
        return super().step(closure)


class FakeRun:
    """What the stage logs to MLflow, kept here."""

    def __init__(self) -> None:
        self.metrics: list[tuple[int, dict[str, float]]] = []

    def log_metrics(self, row: dict[str, float], step: int) -> None:
        self.metrics.append((step, dict(row)))

    def log_artifact(self, path: Path) -> None:
        pass


def write_sharp(root: Path, clips: int = 3, frames: int = 36) -> None:
    """Three clips (two to train on, one to validate on), long enough for windows of 4 inputs."""
    rng = np.random.default_rng(9)
    for i in range(clips):
        base = rng.integers(0, 256, size=(1, 32, 48, 3))
        clip = np.clip(base + rng.integers(-25, 25, size=(frames, 32, 48, 3)), 0, 255).astype(np.uint8)
        write_clip(root / "data" / "sharp" / "synth" / "train" / f"clip{i}", clip)


def stage_params(method: str, options: dict, **train) -> dict:
    data = tiny_params()
    data["train"].update(methods=[method], lr=TRAIN_LR, **train)
    data["methods"][method].update(options)
    return data


def stage(tmp: Path, monkeypatch, data: dict, method: str, stop_after_step: int | None = None) -> FakeRun:
    """``stages.train.main`` in ``tmp`` with ``data`` as params.yaml and MLflow replaced by a FakeRun."""
    (tmp / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.chdir(tmp)
    fake = FakeRun()
    monkeypatch.setattr(stages.train, "mlflow_run", lambda *a, **k: contextlib.nullcontext(fake))
    threads = torch.get_num_threads()
    try:
        stages.train.main(method, "synth", 0, stop_after_step)
    finally:
        torch.set_num_threads(threads)  # the stage sets train.threads for the whole process
    return fake


def run_stage(tmp: Path, monkeypatch, data: dict, method: str) -> tuple[FakeRun, list[float]]:
    """The stage with its optimiser recorded (RecordingAdam.made) and the loss of every step."""
    monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)
    RecordingAdam.made.clear()
    losses: list[float] = []
    build_loss = alabench.training_run.build_loss

    def recording_loss(params, method):
        loss = build_loss(params, method)
        loss.register_forward_hook(lambda module, args, parts: losses.append(float(parts["total"].detach())))
        return loss

    monkeypatch.setattr(alabench.training_run, "build_loss", recording_loss)
    return stage(tmp, monkeypatch, data, method), losses


@pytest.fixture(scope="module")
def sharp(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sharp")
    write_sharp(root)
    return root


def workdir(sharp: Path, tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sharp").symlink_to(sharp / "data" / "sharp")
    return tmp_path


@pytest.mark.parametrize("method, options, expected", [("alanet", {}, TRAIN_LR),  # no option: train.lr
                                                       ("cain", {"lr": 3e-4}, 3e-4),  # its own
                                                       ("cain", {"lr": 0.0}, TRAIN_LR)])  # 0: train.lr
def test_the_optimiser_trains_each_method_at_its_own_learning_rate(sharp, tmp_path, monkeypatch, method, options,
                                                                   expected):
    data = stage_params(method, options, lr_schedule="step", lr_milestones=[], epochs=1)
    run_stage(workdir(sharp, tmp_path), monkeypatch, data, method)
    (optimizer,) = RecordingAdam.made
    assert optimizer.lrs and all(lr == [expected] for lr in optimizer.lrs), optimizer.lrs[:3]
    saved = torch.load(tmp_path / "checkpoints/synth" / method / "seed0/model.pt", weights_only=True)
    assert saved["config"]["train"]["lr"] == expected  # and the resume key records it


@pytest.mark.parametrize("method, options, window", [("alanet", {}, 3), ("bin", {"window": 4}, 4)])
def test_the_train_and_validation_windows_have_each_methods_own_length(sharp, tmp_path, monkeypatch, method,
                                                                        options, window):
    """A method's own `window` option (else train_data.window) reaches the data sets the loop is given."""
    seen = {}

    def fake_train(model, loss_fn, train_set, val_set, cfg, dist, checkpoint, config, **kwargs):
        seen.update(train=train_set[0]["inputs"].shape[0], val=val_set[0]["inputs"].shape[0],
                    key=config["train_data"]["window"])
        return []

    monkeypatch.setattr(stages.train, "train", fake_train)
    stage(workdir(sharp, tmp_path), monkeypatch, stage_params(method, options), method, stop_after_step=1)
    assert (seen["train"], seen["val"], seen["key"]) == (window, window, window)


def model_scores(model: torch.nn.Module, val_set) -> dict[str, float]:
    """Validation PSNR (capped) / SSIM of a model's outputs, with scikit-image on uint8-rounded frames."""
    scores: dict[str, list[float]] = {}
    model.eval()
    for i in range(len(val_set)):
        sample = val_set[i]
        with torch.no_grad():
            deblur, interp = model(sample["inputs"][None])
        for kind, out in (("deblur", deblur[0]), ("interp", interp[0])):
            outs = np.round(out.clamp(0, 1).movedim(1, -1).numpy().astype(np.float64) * 255).astype(np.uint8)
            tgts = np.round(sample[kind].movedim(1, -1).numpy().astype(np.float64) * 255).astype(np.uint8)
            for o, t in zip(outs, tgts):
                scores.setdefault(f"{kind}_psnr", []).append(min(peak_signal_noise_ratio(t, o, data_range=255),
                                                                 VALIDATION_PSNR_CAP))
                scores.setdefault(f"{kind}_ssim", []).append(structural_similarity(t, o, data_range=255,
                                                                                   channel_axis=2))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def test_the_saved_history_holds_what_the_docs_say_values_included(sharp, tmp_path, monkeypatch):
    """docs/training.md: per epoch, the validation PSNR / SSIM of deblurred, interpolated and all frames
    beside the same for the blurry input; with the epoch, step, learning rate, training loss and the
    diagnostics (each module's weight change, the gates' spread and offset). Written to
    model.pt, history.csv, metrics.json (the last row) and MLflow, alike."""
    data = stage_params("alanet", {}, epochs=2, lr_schedule="cosine")
    fake, losses = run_stage(workdir(sharp, tmp_path), monkeypatch, data, "alanet")
    saved = torch.load(tmp_path / "checkpoints/synth/alanet/seed0/model.pt", weights_only=True)
    history = saved["history"]
    scores = [f"{prefix}{kind}_{metric}" for prefix in ("", "input_") for kind in ("deblur", "interp", "joint")
              for metric in ("psnr", "ssim")]
    diagnostics = {f"weight_change_{m}" for m in ("encoder", "attention", "deblur_generator", "interp_generator")}
    diagnostics |= {"gate_spread", "gate_offset"}  # docs/training.md: is the attention learning anything?
    assert [set(row) for row in history] == [{"epoch", "step", "lr", "train_loss", *scores, *diagnostics}] * 2
    # the same rows everywhere they are written
    with open(tmp_path / "training/synth/alanet/seed0/history.csv", newline="") as fh:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    assert len(rows) == len(history) and all(row == pytest.approx(saved) for row, saved in zip(rows, history))
    assert json.loads((tmp_path / "training/synth/alanet/seed0/metrics.json").read_text()) == pytest.approx(history[-1])
    assert fake.metrics == [(int(row["epoch"]), row) for row in history]
    # what the optimiser and the loss saw
    (optimizer,) = RecordingAdam.made
    steps = len(optimizer.lrs)
    per_epoch = steps // 2
    assert steps == 2 * per_epoch == len(losses) > 0
    for epoch, row in enumerate(history):
        done = (epoch + 1) * per_epoch
        assert (row["epoch"], row["step"]) == (epoch + 1, done)
        assert row["lr"] == pytest.approx(optimizer.lrs[done - 1][0], rel=1e-12)  # the rate of its last step
        assert row["train_loss"] == pytest.approx(np.mean(losses[done - per_epoch:done]), rel=1e-9)
    assert history[0]["lr"] > history[1]["lr"] > 0  # cosine: it decays
    # validation, recomputed with scikit-image on the same held-out windows
    params = parse_params(data)
    clips = sorted((tmp_path / "data/sharp/synth/train").iterdir())
    val_set = ValidationWindows(clips[-1:], Eq7.from_params(params.blur), params.train_data,
                                ClipCache(tmp_path / "cache"))
    inputs = baseline_scores(val_set)
    from models.alanet import ALANet, ALANetConfig

    model = ALANet(ALANetConfig(**saved["config"]["model"]))
    model.load_state_dict(saved["model"])
    final = model_scores(model, val_set)
    window = params.train_data.window
    for row in history:
        for prefix, expected in (("input_", inputs), ("", final if row is history[-1] else None)):
            for metric in ("psnr", "ssim"):
                if expected is not None:
                    for kind in ("deblur", "interp"):
                        # as in test_training: a half-integer mean (interp) or float32 arithmetic may round
                        # one grey level the other way
                        exact = kind == "deblur" and prefix == "input_"
                        tolerance = 1e-6 if exact else 0.01 if metric == "psnr" else 1e-4
                        assert row[f"{prefix}{kind}_{metric}"] == pytest.approx(
                            expected[f"{prefix}{kind}_{metric}"], abs=tolerance), (prefix, kind, metric)
                # joint: all frames together, W deblurred and W - 1 interpolated per window
                joint = (window * row[f"{prefix}deblur_{metric}"] + (window - 1) * row[f"{prefix}interp_{metric}"]) \
                    / (2 * window - 1)
                assert row[f"{prefix}joint_{metric}"] == pytest.approx(joint, rel=1e-12)


# ------------------------------------------------------------------------------------------------
# Data orders.


def test_data_orders_differ_across_seed_epoch_pairs():
    """Every (seed, epoch) pair gets its own order: no pair repeats another's (seed 0 epoch 1 and seed 1
    epoch 0 included), whatever arithmetic combines them."""
    orders = {(seed, epoch): tuple(EpochOrder(64, 4, seed, epoch, ONE)) for seed in range(4) for epoch in range(4)}
    assert all(sorted(o) == list(range(64)) for o in orders.values())  # each a permutation of the samples
    for (a, first), (b, second) in itertools.combinations(orders.items(), 2):
        assert first != second, f"(seed, epoch) {a} and {b} give the same data order"
    # and no order is the same for every seed or epoch: neighbouring pairs share few positions
    shared = max(sum(x == y for x, y in zip(first, second))
                 for first, second in itertools.combinations(orders.values(), 2))
    assert shared < 16


def test_sample_draws_differ_across_seed_epoch_index(tmp_path):
    """A training sample's crop, flips and blur come from (train_data.seed, epoch, index): no two of those
    triples draw alike (seed 0 epoch 1 against seed 1 epoch 0, epoch 1 index 0 against epoch 0 index 1).
    Every frame of the clip is one image, so its windows are alike and only the draws tell samples apart."""
    data = tiny_params()
    data["train_data"].update(crop=8, hflip=True, vflip=True, p_blur=0.5, window=2)
    params = parse_params(data)
    image = np.random.default_rng(3).integers(0, 256, size=(1, 24, 24, 3), dtype=np.uint8)
    write_clip(tmp_path / "c", np.repeat(image, 21, axis=0))
    draws = {}
    for seed in range(3):
        windows = TrainWindows([tmp_path / "c"], Eq7(), dataclasses.replace(params.train_data, seed=seed),
                               ClipCache(tmp_path / "cache"))
        for epoch in range(3):
            windows.set_epoch(epoch)
            for index in range(2):
                sample = windows[index]
                draws[(seed, epoch, index)] = torch.cat([sample["inputs"].flatten(), sample["blurry"].float()])
    for (a, x), (b, y) in itertools.combinations(draws.items(), 2):
        assert not torch.equal(x, y), f"(seed, epoch, index) {a} and {b} draw alike"
