"""MLflow logging for the train and evaluate stages (methods never see MLflow).

Tracking URI: ``MLFLOW_TRACKING_URI`` if set (e.g. a team's PostgreSQL-backed server), else
``sqlite:///mlflow.db`` at the repository root, MLflow's own default. One experiment per data set.
SQLite takes one writer at a time; DVC runs stages one after another, and under DDP only rank 0
logs.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

DEFAULT_URI = "sqlite:///mlflow.db"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_URI)


def git_commit() -> str:
    """HEAD's commit, with ``-dirty`` when tracked files differ from it (provenance for every run)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def flatten(params: Any, prefix: str = "") -> dict[str, str]:
    """Nested dataclasses / dicts -> {"train.lr": "0.0003", ...} (MLflow params are flat strings)."""
    if is_dataclass(params):
        params = asdict(params)  # type: ignore[arg-type]
    if not isinstance(params, dict):
        return {prefix.rstrip("."): str(params)}
    out: dict[str, str] = {}
    for key, value in params.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return out


class Run:
    """A thin handle so that callers do not import mlflow themselves."""

    def __init__(self, mlflow: Any) -> None:
        self._mlflow = mlflow

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_artifact(self, path: Path) -> None:
        self._mlflow.log_artifact(str(path))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def fail_orphans(mlflow: Any, experiment_id: str) -> None:
    """Mark FAILED the runs left RUNNING by a killed process of this host (a kill -9 skips MLflow's
    own cleanup); runs of live processes or of other hosts are left alone."""
    host = socket.gethostname()
    client = mlflow.MlflowClient()
    for run in client.search_runs([experiment_id], f"attributes.status = 'RUNNING' and tags.host = '{host}'"):
        pid = run.data.tags.get("pid", "")
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            client.set_terminated(run.info.run_id, "FAILED")


@contextmanager
def mlflow_run(dataset: str, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> Iterator[Run]:
    import mlflow  # slow to import: only the stages that log pay for it

    mlflow.set_tracking_uri(tracking_uri())
    experiment = mlflow.set_experiment(f"alabench-{dataset}")
    fail_orphans(mlflow, experiment.experiment_id)
    provenance = {"git_commit": git_commit(), "dataset": dataset, "host": socket.gethostname(), "pid": str(os.getpid())}
    with mlflow.start_run(run_name=run_name, tags={**provenance, **tags}):
        flat = flatten(params)
        for start in range(0, len(flat), 100):  # MLflow takes at most 100 params per call
            mlflow.log_params(dict(list(flat.items())[start:start + 100]))
        yield Run(mlflow)
