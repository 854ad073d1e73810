"""MLflow as its users see it: runs logged by the library, read back from a real `mlflow server` on
127.0.0.1 through the REST API, the way the UI's search and Compare view read them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import GIT_ENV, run

from alabench.tracking import dvc_experiment, mlflow_run, tracking_uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def logged(tmp_path, monkeypatch) -> Path:
    """Two evaluations (alanet, unet) and a training run logged inside a DVC experiment that changed
    train.lr, as the stages log them (alabench.tracking.mlflow_run)."""
    (tmp_path / "params.yaml").write_text("train:\n  lr: 0.0003\n")
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    run(["git", "init", "-q"], tmp_path)
    run(["git", "add", "-A"], tmp_path)
    run(["git", "commit", "-q", "-m", "baseline"], tmp_path)
    baseline = run(["git", "rev-parse", "HEAD"], tmp_path).stdout.strip()
    (tmp_path / "params.yaml").write_text("train:\n  lr: 0.002\n")  # what `dvc exp run -S train.lr=0.002` does
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("DVC_EXP_NAME", "lr-2e-3")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", baseline)
    assert dvc_experiment() == {"name": "lr-2e-3", "baseline": baseline[:7],
                                "changed": {"train.lr": ("0.0003", "0.002")}}
    for method, psnr in (("alanet", 30.5), ("unet", 30.1)):
        tags = {"stage": "evaluate", "method": method, "protocol": "all_blurry", "status": "ok"}
        with mlflow_run("synth", f"evaluate {method} all_blurry", {"method": method}, tags) as mlflow:
            mlflow.log_metrics({"per_clip.joint.psnr": psnr}, 0)
    with mlflow_run("synth", "train alanet", {"lr": 0.002}, {"stage": "train", "method": "alanet", "seed": "0"}) as mlflow:
        mlflow.log_metrics({"joint_psnr": 29.0}, 1)
    return tmp_path


def test_queued_experiments_log_to_the_repository_not_to_their_copy(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))  # what DVC sets in a queued experiment's temporary copy
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri() == "http://127.0.0.1:5000"  # an explicit server wins


@pytest.mark.pipeline
def test_mlflow_server_serves_named_tagged_runs_that_compare_by_protocol(logged):
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1", "--backend-store-uri", f"sqlite:///{logged / 'mlflow.db'}",
                               "--artifacts-destination", str(logged / "mlartifacts")],
                              cwd=logged, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                experiment = post(f"{base}/experiments/search", {"max_results": 10})
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"mlflow server did not start: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
        ours = [e for e in experiment["experiments"] if e["name"] == "alabench-synth"]
        ids = [e["experiment_id"] for e in ours]
        assert len(ids) == 1  # the UI opens it on its runs table, not on the GenAI traces page:
        assert {t["key"]: t["value"] for t in ours[0]["tags"]}["mlflow.experimentKind"] == "custom_model_development"
        # The search the docs give for the Compare view: one protocol, every method side by side.
        found = post(f"{base}/runs/search", {"experiment_ids": ids, "filter": "tags.protocol = 'all_blurry'",
                                              "order_by": ["metrics.`per_clip.joint.psnr` DESC"]})["runs"]
        assert [r["info"]["run_name"] for r in found] == ["evaluate alanet all_blurry", "evaluate unet all_blurry"]
        for r in found:
            tags = {t["key"]: t["value"] for t in r["data"]["tags"]}
            assert tags["dataset"] == "synth" and tags["protocol"] == "all_blurry" and tags["stage"] == "evaluate"
            assert tags["dvc_exp"] == "lr-2e-3" and tags["git_commit"] not in ("", "unknown")
            assert tags["mlflow.note.content"] == "DVC experiment lr-2e-3: train.lr=0.002"
            assert r["info"]["status"] == "FINISHED"
        metrics = {r["info"]["run_name"]: {m["key"]: m["value"] for m in r["data"]["metrics"]} for r in found}
        assert metrics["evaluate alanet all_blurry"]["per_clip.joint.psnr"] == pytest.approx(30.5)
        trained = post(f"{base}/runs/search", {"experiment_ids": ids, "filter": "tags.stage = 'train'"})["runs"]
        assert [{t["key"]: t["value"] for t in r["data"]["tags"]}["seed"] for r in trained] == ["0"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
