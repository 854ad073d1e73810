"""The training faults of issue 19: stale resumes, epoch-boundary kills, checkpoint bytes, divergence,
DDP loss averaging, orphaned MLflow runs; and seeds as separate train stages."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
import yaml
from conftest import repo_from, run, tiny_params, write_clip
from test_training import ONE, CountingLoss, assert_same_weights, model, train_params

from alabench.blur import Eq7
from alabench.datasets import ClipCache, TrainWindows, ValidationWindows
from alabench.training import (Distributed, TrainingError, UnreadableCheckpoint, check_validation,
                               load_checkpoint, save_checkpoint, train)
from alabench.training_run import data_fingerprint
from models.losses import ReconstructionLoss


def make_clips(root: Path, count: int = 3) -> list[Path]:
    rng = np.random.default_rng(5)
    clips = []
    for i in range(count):
        base = rng.integers(0, 256, size=(1, 32, 32, 3))
        frames = np.clip(base + rng.integers(-20, 20, size=(31, 32, 32, 3)), 0, 255).astype(np.uint8)
        write_clip(root / f"c{i}", frames)
        clips.append(root / f"c{i}")
    return clips


def windows(root: Path, **changes):
    clips = make_clips(root)
    params = train_params(**changes)
    cache = ClipCache(root / "cache")
    return (TrainWindows(clips[:2], Eq7(), params.train_data, cache),
            ValidationWindows(clips[2:], Eq7(), params.train_data, cache))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return windows(tmp_path_factory.mktemp("clips"))


def fit(data, checkpoint: Path, stop: int | None = None, loss=None, dist: Distributed = ONE, **changes):
    params = train_params(**changes)
    net = model()
    history = train(net, loss or ReconstructionLoss(None, 0), data[0], data[1], params.train, dist, checkpoint,
                    {"test": 1, **changes}, stop_after_step=stop)
    return net, history


@pytest.mark.parametrize("epochs, precision", [(1, "float32"), (2, "float32"), (2, "bfloat16")])
def test_a_kill_before_validation_resumes_to_the_same_history(data, tmp_path, epochs, precision):
    full, history = fit(data, tmp_path / "a.pt", epochs=epochs, precision=precision)
    per_epoch = history[0]["step"]
    fit(data, tmp_path / "b.pt", stop=per_epoch, epochs=epochs, precision=precision)  # killed before validation
    assert load_checkpoint(tmp_path / "b.pt")["step"] == per_epoch and load_checkpoint(tmp_path / "b.pt")["history"] == []
    resumed, resumed_history = fit(data, tmp_path / "b.pt", epochs=epochs, precision=precision)
    assert resumed_history == history  # epoch 1's row is there, and epoch 2's loss is its own
    assert len(history) == epochs
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_identical_tensors_give_identical_checkpoint_bytes(tmp_path):
    state = {"model": model().state_dict(), "step": 3}
    save_checkpoint(tmp_path / "one" / "model.pt", state)
    save_checkpoint(tmp_path / "two" / "model.pt", state)
    assert (tmp_path / "one" / "model.pt").read_bytes() == (tmp_path / "two" / "model.pt").read_bytes()


def test_a_diverging_loss_stops_the_run_naming_train_lr(data, tmp_path):
    class Explodes(ReconstructionLoss):
        calls = 0

        def forward(self, outputs, targets):
            parts = super().forward(outputs, targets)
            Explodes.calls += 1
            if Explodes.calls > 3:
                parts["total"] = parts["total"] * 1e6  # finite, but far above where it started
            return parts

    with pytest.raises(TrainingError, match=r"at step 4 .*training diverged. Lower train.lr \(now 0.001\)"):
        fit(data, tmp_path / "d.pt", loss=Explodes(None, 0))
    assert load_checkpoint(tmp_path / "d.pt")["step"] == 3  # the last good state is kept


def test_a_validation_far_below_the_blurry_input_stops_the_run():
    cfg = train_params(lr=0.5).train
    row = {"epoch": 2, "joint_psnr": 5.1, "input_joint_psnr": 24.8}
    with pytest.raises(TrainingError, match=r"5.10 dB after epoch 2 .* below the blurry input's 24.80 dB.*"
                                            r"Lower train.lr \(now 0.5\)"):
        check_validation(row, cfg, start=24.8)  # a residual model starts at the blurry input
    check_validation({**row, "joint_psnr": 20.0}, cfg, start=24.8)  # worse, but not diverged
    check_validation({**row, "joint_psnr": 8.2}, cfg, start=7.9)  # a direct model starts far below: learning


def test_the_data_fingerprint_sees_a_rewritten_frame_of_the_same_size(tmp_path):
    clips = make_clips(tmp_path, 2)
    before = data_fingerprint(clips)
    frame = sorted(clips[1].iterdir())[5]
    stat = frame.stat()
    raw = bytearray(frame.read_bytes())
    raw[-20] ^= 0xFF  # same size, same mtime: a damaged frame
    frame.write_bytes(bytes(raw))
    os.utime(frame, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert data_fingerprint(clips) != before
    assert data_fingerprint(list(reversed(clips))) == data_fingerprint(clips)


def _ddp_worker(rank: int, root: str, init: str, out: str) -> None:
    torch.set_num_threads(1)
    torch_dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        _, history = fit(windows(Path(root) / f"r{rank}"), Path(root) / f"ddp{rank}.pt",
                         dist=Distributed(rank, 2, torch.device("cpu")))
        if rank == 0:
            Path(out).write_text(json.dumps(history))
    finally:
        torch_dist.destroy_process_group()


@pytest.mark.pipeline  # starts processes of its own
def test_ddp_records_the_loss_averaged_over_ranks(data, tmp_path):
    _, single = fit(data, tmp_path / "one.pt")
    torch.multiprocessing.spawn(_ddp_worker, args=(str(tmp_path), f"file://{tmp_path / 'rendezvous'}",
                                                   str(tmp_path / "ddp.json")), nprocs=2)
    ddp = json.loads((tmp_path / "ddp.json").read_text())
    assert [r["step"] for r in ddp] == [r["step"] for r in single]
    for a, b in zip(ddp, single):  # half-batch means averaged = the whole batch's mean
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)


def test_a_killed_runs_mlflow_run_is_marked_failed_at_the_next_start(tmp_path, monkeypatch):
    import mlflow
    from alabench import tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(tracking.tracking_uri())
    experiment = mlflow.set_experiment("alabench-synth")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    client = mlflow.MlflowClient()
    host = tracking.socket.gethostname()
    orphan = client.create_run(experiment.experiment_id, tags={"host": host, "pid": str(dead.pid)}).info.run_id
    alive = client.create_run(experiment.experiment_id, tags={"host": host, "pid": str(os.getppid())}).info.run_id
    elsewhere = client.create_run(experiment.experiment_id, tags={"host": host + "-other", "pid": str(dead.pid)}).info.run_id
    with tracking.mlflow_run("synth", "train alanet", {"a": 1}, {"stage": "train"}):
        pass
    status = {r: client.get_run(r).info.status for r in (orphan, alive, elsewhere)}
    assert status == {orphan: "FAILED", alive: "RUNNING", elsewhere: "RUNNING"}


@pytest.mark.pipeline
@pytest.mark.usefixtures("no_mlflow")  # reads no MLflow run
def test_adding_a_seed_trains_only_that_seed(prepared_repo, tmp_path):
    params = tiny_params()
    params["train"]["methods"] = ["alanet"]
    repo = repo_from(prepared_repo, tmp_path / "repo", params)
    run([sys.executable, "-m", "dvc", "repro", "train"], repo)
    assert (repo / "checkpoints/synth/alanet/seed0/model.pt").is_file()
    assert (repo / "training/synth/alanet/seed0/history.csv").is_file()
    model_bytes = (repo / "checkpoints/synth/alanet/seed0/model.pt").read_bytes()
    params["train"]["seeds"] = [0, 1]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(run([sys.executable, "-m", "dvc", "status", "--json", "train"], repo).stdout or "{}")
    assert set(status) == {"train@alanet-synth-1"}
    run([sys.executable, "-m", "dvc", "repro", "train"], repo)
    first = torch.load(repo / "checkpoints/synth/alanet/seed0/model.pt", weights_only=True)
    second = torch.load(repo / "checkpoints/synth/alanet/seed1/model.pt", weights_only=True)
    assert (repo / "checkpoints/synth/alanet/seed0/model.pt").read_bytes() == model_bytes
    assert any(not torch.equal(first["model"][k], second["model"][k]) for k in first["model"])
    # a training frame rewritten: the cached state of seed 0 is not resumed
    clip = sorted((repo / "data/sharp/synth/train").iterdir())[0]
    (clip / "00003.png").write_bytes((clip / "00009.png").read_bytes())
    result = run([sys.executable, "-m", "stages.train", "--method", "alanet", "--dataset", "synth", "--seed", "0"], repo)
    assert "resuming" not in result.stderr and "made with other params" in result.stderr


def test_a_method_may_set_its_own_learning_rate():
    """CAIN diverged at the shared rate on the CPU schedule: `methods.cain.lr` sets its own, 0 keeps train.lr."""
    from alabench.config import parse_params
    from alabench.methods import get_method
    from alabench.training import with_overrides

    cain = get_method("cain")
    data = tiny_params()
    data["methods"]["cain"] = {**data["methods"]["cain"], "lr": 0.0}
    shared = parse_params(data)
    assert with_overrides(shared.train, "train", cain.options_from(shared)).lr == shared.train.lr
    data["methods"]["cain"]["lr"] = 3e-4
    own = parse_params(data)
    assert with_overrides(own.train, "train", cain.options_from(own)).lr == 3e-4 != own.train.lr
    assert with_overrides(own.train, "train", None) is own.train


def damaged(good: bytes, how: str) -> bytes:
    """A resume state cut short by a full disk or a copy, or overwritten by something else."""
    return {"truncated": good[: len(good) // 2], "cut_short": good[:100], "empty": b"",
            "garbage": np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
            "code": pickle.dumps(print), "list": pickle.dumps([1, 2])}[how]


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    net, history = fit(data, tmp_path_factory.mktemp("fresh") / "fresh.pt")
    return net.state_dict(), history


@pytest.mark.parametrize("how", ["truncated", "garbage", "code"])
def test_an_unreadable_resume_state_is_moved_aside_and_training_starts_over(data, uninterrupted, tmp_path, caplog,
                                                                            how):
    path = tmp_path / "state.pt"
    fit(data, path, stop=4)
    bad = damaged(path.read_bytes(), how)
    path.write_bytes(bad)
    loss = CountingLoss()
    with caplog.at_level(logging.WARNING, logger="alabench.training"):
        net, history = fit(data, path, loss=loss)
    assert loss.calls == 10, "the run did not start over"
    assert (tmp_path / "state.pt.corrupt").read_bytes() == bad  # kept for a look, never read again
    [line] = [r.getMessage() for r in caplog.records if "state.pt" in r.getMessage()]
    assert line.startswith(f"{path}: ") and "\n" not in line
    assert line.endswith(f"moved aside to {path}.corrupt: training starts over from step 0")
    assert "weights_only" not in caplog.text
    assert_same_weights(uninterrupted[0], net.state_dict())
    assert history == uninterrupted[1] and load_checkpoint(path)["step"] == 10


@pytest.mark.parametrize("how", ["truncated", "cut_short", "empty", "garbage", "code", "list"])
def test_an_unreadable_checkpoint_is_named_without_torchs_unsafe_advice(tmp_path, how):
    path = tmp_path / "model.pt"
    save_checkpoint(path, {"model": model().state_dict()})
    path.write_bytes(damaged(path.read_bytes(), how))
    with pytest.raises(UnreadableCheckpoint) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "delete it" in message
    assert "weights_only" not in message and "\n" not in message


def test_the_divergence_message_says_what_the_next_run_does(data, tmp_path, caplog):
    with pytest.raises(TrainingError) as caught:  # lr 1.0 diverges within a few steps, after a checkpoint
        fit(data, tmp_path / "d.pt", lr=1.0)
    assert load_checkpoint(tmp_path / "d.pt")["step"] >= 1
    assert "Lower train.lr (now 1) and rerun: it then starts over from step 0" in str(caught.value)
    loss = CountingLoss()
    with caplog.at_level(logging.INFO, logger="alabench.training"):
        fit(data, tmp_path / "d.pt", loss=loss, lr=0.001)  # what the message says to do
    assert loss.calls == 10 and "resuming" not in caplog.text  # it did start over, as the message said
