"""``ALABENCH_MLFLOW``: 0 logs no MLflow run and imports no MLflow; 1 (or unset) logs; anything else
stops naming the variable."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from alabench import tracking
from alabench.errors import UserError
from conftest import REPO

LOG_ONE_RUN = """
import json, sys
from pathlib import Path
from alabench.tracking import mlflow_run
with mlflow_run("synth", "evaluate x all_blurry", {"a": 1}, {"stage": "evaluate"}) as run:
    run.log_metrics({"per_clip.joint.psnr": 30.0}, 0)
    run.log_artifact(Path(sys.argv[1]))
    run.log_artifacts(Path(sys.argv[1]).parent, "folder")
print(json.dumps({"mlflow_imported": "mlflow" in sys.modules}))
"""


@pytest.mark.pipeline  # starts processes of its own
@pytest.mark.parametrize("switch", ["0", None])
def test_the_switch_decides_whether_a_run_is_logged(tmp_path, switch):
    db, artifact = tmp_path / "mlflow.db", tmp_path / "summary.json"
    artifact.write_text("{}")
    env = {k: v for k, v in os.environ.items() if k != tracking.SWITCH}
    env.update({"MLFLOW_TRACKING_URI": f"sqlite:///{db}", **({tracking.SWITCH: switch} if switch else {})})
    done = subprocess.run([sys.executable, "-c", LOG_ONE_RUN, str(artifact)], cwd=REPO, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    logs = switch != "0"
    assert json.loads(done.stdout.splitlines()[-1]) == {"mlflow_imported": logs}
    assert db.exists() == logs
    if logs:
        with sqlite3.connect(db) as con:
            assert con.execute("select name, status from runs").fetchall() == [("evaluate x all_blurry", "FINISHED")]


@pytest.mark.parametrize("value, logs", [("1", True), ("", True), (" 0 ", False)])
def test_one_or_empty_logs_and_zero_does_not(monkeypatch, value, logs):
    monkeypatch.setenv(tracking.SWITCH, value)
    assert tracking.logging_on() is logs


@pytest.mark.parametrize("value", ["yes", "off", "2"])
def test_another_value_stops_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(tracking.SWITCH, value)
    with pytest.raises(UserError, match=rf"ALABENCH_MLFLOW='{value}': set it to 1 .* or 0"):
        with tracking.mlflow_run("synth", "x", {}, {}):
            pass
