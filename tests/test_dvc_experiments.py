"""DVC experiments on a tiny config: `dvc exp run -S` reruns only what the changed knob feeds, the
report and MLflow name the experiment, and a queued pair completes under `dvc queue start -j 2`."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import copy_repo, run, run_env

DVC = [sys.executable, "-m", "dvc"]


@pytest.fixture(scope="module")
def repo(tiny_repo, tmp_path_factory) -> Path:
    """The tiny pipeline reproduced (a copy of the session's) and committed: the baseline experiments
    start from. Each experiment below changes one option of alanet alone, so only its stages rerun."""
    repo = copy_repo(tiny_repo, tmp_path_factory.mktemp("exp") / "repo")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "baseline results"], repo)
    return repo


def worker_logs(repo: Path) -> str:
    """What the queue's workers printed: the evidence when a queued experiment never finishes."""
    logs = sorted((repo / ".dvc" / "tmp" / "exps" / "celery").glob("*.out"))
    return "".join(f"\n--- {p.name} (last 3000 characters)\n{p.read_text(errors='replace')[-3000:]}" for p in logs)


def ran(stdout: str) -> set[str]:
    return {line.split("'")[1] for line in stdout.splitlines() if line.startswith("Running stage '")}


def test_exp_run_reruns_only_the_changed_method_and_names_itself(repo):
    out = run([*DVC, "exp", "run", "-n", "narrow", "-S", "methods.alanet.width=0.125"], repo).stdout
    # check_params runs after any edit of params.yaml (`-S` edits it): the rest is exactly what the knob touches
    assert ran(out) == {"check_params", "train@alanet-synth-0", "evaluate_trained@alanet-synth-all_blurry",
                        "evaluate_trained@alanet-synth-mixed", "report"}, out
    page = (repo / "reports" / "index.html").read_text()
    experiment = page.split('id="experiment"', 1)[1].split("</p>", 1)[0]
    assert "<code>narrow</code>" in experiment and "<code>methods.alanet.width</code> 0.0625 → 0.125" in experiment
    with sqlite3.connect(repo / "mlflow.db") as con:
        tagged = con.execute("select r.name from runs r join tags t on r.run_uuid = t.run_uuid "
                             "where t.key = 'dvc_exp' and t.value = 'narrow'").fetchall()
    assert sorted(name for (name,) in tagged) == ["evaluate alanet all_blurry", "evaluate alanet mixed", "report",
                                                  "train alanet"]
    shown = run([*DVC, "exp", "show", "--only-changed", "--csv"], repo).stdout
    rows = list(csv.DictReader(io.StringIO(shown)))
    column = "reports/metrics/synth/all_blurry/alanet.json:joint_psnr"  # DVC prefixes keys found in two files
    assert "methods.alanet.width" in rows[0] and column in rows[0], rows[0].keys()
    baseline = next(r for r in rows if r["typ"] == "baseline" and r["rev"] != "workspace")  # the commit
    narrow = next(r for r in rows if r["Experiment"] == "narrow")
    assert narrow["methods.alanet.width"] == "0.125" and baseline["methods.alanet.width"] == "0.0625"
    assert narrow[column] and baseline[column] and narrow[column] != baseline[column]  # both read, and moved
    assert not any("blurry_input" in key for key in rows[0]), rows[0].keys()  # unchanged columns are left out
    diff = run([*DVC, "exp", "diff", "HEAD", "narrow"], repo).stdout
    assert "methods.alanet.width" in diff and "reports/metrics/synth/all_blurry/alanet.json" in diff


def test_a_queued_pair_completes_with_two_workers(repo, tmp_path, monkeypatch):
    # `dvc queue start` spawns its workers as `dvc exp queue-worker` found on PATH (dvc_task's
    # ManagedProcess), not as `python -m dvc`: without a `dvc` command they never start, silently.
    shim = tmp_path / "bin" / "dvc"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dvc "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    # both differ from the baseline: an experiment equal to it reruns nothing (every output, the report's
    # included, comes from the DVC cache), so it would log no MLflow run to check. Each changes the
    # report alone (its MLflow run is the report's): what reruns for a changed knob is
    # test_exp_run_reruns_only_the_changed_method_and_names_itself's, here it is the queue's workers
    for name, change in (("r-a", "report.residue_max=32"), ("r-b", "report.zoom=40")):
        run([*DVC, "exp", "run", "--queue", "-n", name, "-S", change], repo)
    # The workers are forked from `queue start` and keep its stdout: with a pipe there, the call would
    # wait for them to exit, and a worker DVC fails to shut down (treeverse/dvc#10562) hung CI for 900 s.
    started_log = tmp_path / "queue-start.log"
    with started_log.open("w") as log:
        started = subprocess.run([*DVC, "queue", "start", "-j", "2"], cwd=repo, env=run_env(repo), stdout=log,
                                 stderr=subprocess.STDOUT)
    assert started.returncode == 0, started_log.read_text()
    try:
        since = time.monotonic()
        while True:
            status = run([*DVC, "queue", "status"], repo).stdout
            if "Queued" not in status and "Running" not in status:
                break
            waited = time.monotonic() - since
            assert "0 active, 0 idle" not in status or waited < 60, status + worker_logs(repo)
            assert waited < 400, status + worker_logs(repo)
            time.sleep(3)
    finally:
        run([*DVC, "queue", "stop", "--kill"], repo, check=False)
    assert status.count("Success") == 2 and "Failed" not in status, status
    rows = list(csv.DictReader(io.StringIO(run([*DVC, "exp", "show", "--csv"], repo).stdout)))
    done = {r["Experiment"]: r for r in rows if r["Experiment"] in ("r-a", "r-b")}
    assert {n: (r["report.residue_max"], r["report.zoom"]) for n, r in done.items()} == {
        "r-a": ("32", "48"), "r-b": ("64", "40")}  # each its own change over the baseline's 64 and 48
    assert all(r["reports/metrics/synth/all_blurry/alanet.json:joint_psnr"] for r in done.values())
    with sqlite3.connect(repo / "mlflow.db") as con:  # the copies' runs reach the repository's mlflow.db
        names = {v for (v,) in con.execute("select value from tags where key = 'dvc_exp'")}
    assert {"r-a", "r-b"} <= names
