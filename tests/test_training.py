"""The shared training loop: schedule, sample order, kill-and-resume, NaN, checkpoints."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from alabench.blur import Eq7
from alabench.config import parse_params
from alabench.datasets import ClipCache, TrainWindows, ValidationWindows
from alabench.training import (Distributed, EpochOrder, TrainingError, load_checkpoint, lr_at_epoch,
                               save_checkpoint, train)
from conftest import tiny_params, write_clip
from models.alanet import ALANet, ALANetConfig
from models.losses import ReconstructionLoss

ONE = Distributed(0, 1, torch.device("cpu"))


def train_params(**changes):
    data = tiny_params()
    data["train"].update(dict(epochs=2, batch_size=2, checkpoint_every=1, perceptual_weight=0.0, threads=1))
    data["train"].update(changes)
    return parse_params(data)


def write_clips(root: Path) -> list[Path]:
    """Three 31-frame 32×32 clips: two to train on, one to validate on."""
    rng = np.random.default_rng(5)
    clips = []
    for i in range(3):
        base = rng.integers(0, 256, size=(1, 32, 32, 3))
        frames = np.clip(base + rng.integers(-20, 20, size=(31, 32, 32, 3)), 0, 255).astype(np.uint8)
        write_clip(root / f"c{i}", frames)
        clips.append(root / f"c{i}")
    return clips


def windows(root: Path):
    """The training and validation windows of the clips under ``root`` (a killed child process rebuilds them)."""
    clips = [root / f"c{i}" for i in range(3)]
    params = train_params()
    cache = ClipCache(root / "cache")
    return (TrainWindows(clips[:2], Eq7(), params.train_data, cache),
            ValidationWindows(clips[2:], Eq7(), params.train_data, cache))


@pytest.fixture(scope="module")
def clip_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    write_clips(root)
    return root


@pytest.fixture(scope="module")
def data(clip_root):
    return windows(clip_root)


def model():
    torch.manual_seed(0)
    return ALANet(ALANetConfig(window=3, width=0.0625, reduction=2))


def run(data, checkpoint: Path, stop: int | None = None, loss: ReconstructionLoss | None = None, **changes):
    params = train_params(**changes)
    net = model()
    history = train(net, loss or ReconstructionLoss(None, 0), data[0], data[1], params.train, ONE, checkpoint,
                    {"test": 1, **changes}, stop_after_step=stop)
    return net, history


class CountingLoss(ReconstructionLoss):
    """Counts the training steps it is called for (validation does not call the loss)."""

    def __init__(self) -> None:
        super().__init__(None, 0)
        self.calls = 0

    def forward(self, outputs, targets):
        self.calls += 1
        return super().forward(outputs, targets)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """One uninterrupted run (checkpoint every 2 steps): its weights and history."""
    net, history = run(data, tmp_path_factory.mktemp("reference") / "r.pt", checkpoint_every=2)
    return net.state_dict(), history


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"weights differ from the uninterrupted run's: {name}"


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


def test_training_changes_the_weights(reference):
    """The reference the resume tests compare against really trained (an idle loop would match itself)."""
    initial = model().state_dict()
    assert any(not torch.equal(initial[k], v) for k, v in reference[0].items()), "training left every weight as it was"
    assert len(reference[1]) == 2 and reference[1][-1]["step"] == 10


def test_stopped_run_resumes_to_identical_weights(data, reference, tmp_path):
    weights, history = reference
    run(data, tmp_path / "b.pt", stop=7, checkpoint_every=1)  # stopped mid-epoch 2, after its checkpoint
    assert load_checkpoint(tmp_path / "b.pt")["step"] == 7
    loss = CountingLoss()
    resumed, resumed_history = run(data, tmp_path / "b.pt", loss=loss, checkpoint_every=1)
    assert loss.calls == 10 - 7
    assert_same_weights(weights, resumed.state_dict())
    assert resumed_history == history, "the resumed run's history differs from the uninterrupted run's"


# A child process that trains until its n-th step's loss, says so through a marker file, then waits
# to be killed: steps 1..n-1 are done, the last checkpoint (every 2 steps, and at the end of epoch 1,
# step 5) holds the last of them it reached.
KILLED_CHILD = """
import sys, time
from pathlib import Path
import torch
from test_training import CountingLoss, run, windows

root, checkpoint, marker, threads = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
block_at, workers = int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(threads)


class BlockAtStep(CountingLoss):
    def forward(self, outputs, targets):
        if self.calls == block_at - 1:
            marker.write_text(f"step {block_at}")
            time.sleep(600)
        return super().forward(outputs, targets)


run(windows(root), checkpoint, loss=BlockAtStep(), checkpoint_every=2, loader_workers=workers)
"""


def checkpoint_bytes(weights: dict, path: Path) -> bytes:
    """The bytes the train stage's model.pt gets for these weights (alabench.training.save_checkpoint)."""
    save_checkpoint(path, {"method": "alanet", "model": weights})
    return path.read_bytes()


@pytest.mark.parametrize("block_at, saved, workers", [
    (3, 2, 0),  # early in epoch 1
    (8, 6, 0),  # mid epoch 2: step 7 is lost and redone
    (6, 5, 2),  # first step of epoch 2, right after epoch 1's validation, with loader worker processes
])
@pytest.mark.pipeline  # starts processes of its own
def test_run_killed_with_sigkill_redoes_the_lost_steps_and_ends_identical(data, reference, clip_root, tmp_path,
                                                                          block_at, saved, workers):
    checkpoint, marker = tmp_path / "k.pt", tmp_path / "blocked"
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(clip_root), str(checkpoint), str(marker),
                              str(torch.get_num_threads()), str(block_at), str(workers)],
                             cwd=tests, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, f"the child ended before step {block_at}:\n{child.stderr.read()}"
            assert time.monotonic() < deadline, f"the child did not reach step {block_at} in 120 s"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
    assert load_checkpoint(checkpoint)["step"] == saved  # what came after was lost with the process
    loss = CountingLoss()
    resumed, history = run(data, checkpoint, loss=loss, checkpoint_every=2, loader_workers=workers)
    assert loss.calls == 10 - saved  # the lost steps are redone, the saved ones are not
    assert_same_weights(reference[0], resumed.state_dict())
    assert history == reference[1], "the resumed run's history differs from the uninterrupted run's"
    assert checkpoint_bytes(resumed.state_dict(), tmp_path / "a.pt") == checkpoint_bytes(reference[0], tmp_path / "b.pt")


def test_checkpoint_from_other_params_is_not_resumed(data, tmp_path, caplog):
    run(data, tmp_path / "c.pt", stop=7)
    loss = CountingLoss()
    with caplog.at_level(logging.WARNING, logger="alabench.training"):
        net, history = run(data, tmp_path / "c.pt", loss=loss, lr=0.001)  # other params: starts over
    assert f"ignoring {tmp_path / 'c.pt'}: it was made with other params" in caplog.text
    assert loss.calls == 10  # every step, from the first
    fresh, fresh_history = run(data, tmp_path / "fresh.pt", lr=0.001)  # as if there had been no checkpoint
    assert_same_weights(fresh.state_dict(), net.state_dict())
    assert history == fresh_history
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 10  # the foreign checkpoint was overwritten


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
    with pytest.raises(TrainingError, match=r"loss became nan at step 4 .*and rerun: it then starts over from step 0"):
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


def test_a_failed_checkpoint_write_leaves_the_old_checkpoint_whole(tmp_path, monkeypatch):
    net = model()
    save_checkpoint(tmp_path / "m.pt", {"model": net.state_dict(), "step": 3})
    before = (tmp_path / "m.pt").read_bytes()
    real_write = Path.write_bytes

    def half_then_fail(self, data):  # the bytes reach the disk half-way, as a full disk or a kill would
        real_write(self, data[: len(data) // 2])
        raise OSError("No space left on device")
    monkeypatch.setattr(Path, "write_bytes", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(tmp_path / "m.pt", {"model": net.state_dict(), "step": 4})
    monkeypatch.undo()
    assert (tmp_path / "m.pt").read_bytes() == before, "the failed write damaged the old checkpoint"
    assert load_checkpoint(tmp_path / "m.pt")["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left


def test_too_small_a_data_set_is_named(data, tmp_path):
    params = train_params(batch_size=1000)
    with pytest.raises(TrainingError, match="fewer than one batch of 1000"):
        train(model(), ReconstructionLoss(None, 0), data[0], data[1], params.train, ONE, tmp_path / "x.pt", {})


def baseline_scores(val_set) -> dict[str, float]:
    """The blurry-input baseline computed independently with scikit-image: deblur = the input,
    interpolation = the mean of its two neighbours (float), each rounded to uint8, PSNR capped at 50."""
    scores: dict[str, list[float]] = {}
    for i in range(len(val_set)):
        sample = val_set[i]
        inputs = np.round(sample["inputs"].movedim(1, -1).numpy().astype(np.float64) * 255)
        pairs = {"deblur": (inputs, sample["deblur"]), "interp": ((inputs[:-1] + inputs[1:]) / 2, sample["interp"])}
        for kind, (outputs, targets) in pairs.items():
            outputs = np.round(outputs).astype(np.uint8)
            targets = np.round(targets.movedim(1, -1).numpy().astype(np.float64) * 255).astype(np.uint8)
            for out, tgt in zip(outputs, targets):
                scores.setdefault(f"input_{kind}_psnr", []).append(min(peak_signal_noise_ratio(tgt, out, data_range=255), 50))
                scores.setdefault(f"input_{kind}_ssim", []).append(structural_similarity(tgt, out, data_range=255, channel_axis=2))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def test_validation_reports_the_blurry_input_baseline_and_its_draw_stays_fixed(data, reference):
    history = reference[1]
    expected = baseline_scores(data[1])
    first, second = history
    for key, value in expected.items():
        # SSIM: the torch SSIM equals scikit-image's to 1e-6 (test_metrics.py); interp: the mean of two
        # neighbours, a half integer, may round the other way in the model's float32
        tolerance = (1e-9 if key.endswith("psnr") else 1e-6) if "deblur" in key else (0.005 if key.endswith("psnr") else 1e-4)
        assert first[key] == pytest.approx(value, abs=tolerance), key
    # the validation draw (which inputs are blurry, which windows) is the same in every epoch
    for key in ("input_deblur_psnr", "input_interp_psnr", "input_joint_psnr", "input_deblur_ssim", "input_joint_ssim"):
        assert first[key] == second[key], key
    assert expected["input_deblur_psnr"] < 50  # some validation inputs are blurry: the baseline is not trivial
    for key in ("deblur_psnr", "interp_psnr", "joint_psnr"):
        assert np.isfinite(first[key]) and first[key] != second[key]  # the model's own scores do move
