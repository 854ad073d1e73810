"""MLflow logging for the train and evaluate stages (methods never see MLflow).

Tracking URI: ``MLFLOW_TRACKING_URI`` if set (e.g. a team's PostgreSQL-backed server), else
``sqlite:///mlflow.db`` at the repository root, MLflow's own default. One experiment per data set;
every run is tagged with its data set, git commit and DVC experiment (``dvc_exp``: the name under
``dvc exp run``, which is the profile's under ``make repro PROFILE=<name>``, else ``workspace``) on top of the stage's own tags (stage, method, protocol, seed),
so the UI's search box (``tags.protocol = 'all_blurry'``) puts methods side by side for Compare.
SQLite takes one writer at a time; DVC runs stages one after another, and under DDP only rank 0
logs. ``ALABENCH_MLFLOW=0`` logs nothing (and imports no MLflow, 1.6 CPU-seconds a stage): the
outputs are the same, only the record is not kept; the tests that do not read MLflow run so.
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

import yaml

from alabench.errors import UserError

DEFAULT_URI = "sqlite:///mlflow.db"
SWITCH = "ALABENCH_MLFLOW"  # 1 (default) or 0


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else the repository's mlflow.db. Under ``dvc queue`` / ``dvc exp run
    --temp`` a stage runs in a copy under .dvc/tmp/exps/, thrown away afterwards: DVC then points
    ``DVC_ROOT`` at the real repository, and the runs go to its mlflow.db, not to the copy's."""
    if "MLFLOW_TRACKING_URI" in os.environ:
        return os.environ["MLFLOW_TRACKING_URI"]
    root = os.environ.get("DVC_ROOT")
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}" if root else DEFAULT_URI


def git_commit() -> str:
    """HEAD's commit, with ``-dirty`` when tracked files differ from it (provenance for every run)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def dvc_experiment(params_file: Path = Path("params.yaml")) -> dict[str, Any] | None:
    """The DVC experiment this stage runs in, or None outside ``dvc exp run``: its name, the baseline
    commit and the params changed from it (``{"train.lr": ("0.0003", "0.002")}``), read from the
    variables DVC sets for every stage of an experiment and from ``git show <baseline>:params.yaml``."""
    name = os.environ.get("DVC_EXP_NAME")
    if not name:
        return None
    baseline = os.environ.get("DVC_EXP_BASELINE_REV", "")
    changed: dict[str, tuple[str, str]] = {}
    try:
        before = subprocess.run(["git", "show", f"{baseline}:./{params_file.name}"], cwd=params_file.parent or ".",
                                capture_output=True, text=True, check=True).stdout
        old, new = flatten(yaml.safe_load(before) or {}), flatten(yaml.safe_load(params_file.read_text()) or {})
        changed = {key: (old.get(key, "–"), new.get(key, "–")) for key in sorted(old.keys() | new.keys())
                   if old.get(key) != new.get(key)}
    except (OSError, subprocess.CalledProcessError):
        pass  # no git or no baseline: the name alone still says which experiment it is
    return {"name": name, "baseline": baseline[:7], "changed": changed}


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


def logging_on() -> bool:
    """``ALABENCH_MLFLOW``: unset, empty or 1 logs, 0 does not; anything else stops the stage, naming it."""
    value = os.environ.get(SWITCH, "").strip() or "1"
    if value not in ("0", "1"):
        raise UserError(f"{SWITCH}={value!r}: set it to 1 (log MLflow runs, the default) or 0 (log none)")
    return value == "1"


class Run:
    """A thin handle so that callers do not import mlflow themselves (``None``: logging is off)."""

    def __init__(self, mlflow: Any | None) -> None:
        self._mlflow = mlflow

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self._mlflow:
            self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_artifact(self, path: Path) -> None:
        if self._mlflow:
            self._mlflow.log_artifact(str(path))

    def log_artifacts(self, folder: Path, artifact_path: str) -> None:
        if self._mlflow and Path(folder).is_dir():
            self._mlflow.log_artifacts(str(folder), artifact_path)


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
    if not logging_on():
        yield Run(None)
        return
    import mlflow  # slow to import: only the stages that log pay for it

    mlflow.set_tracking_uri(tracking_uri())
    found = mlflow.set_experiment(f"alabench-{dataset}")
    if "mlflow.experimentKind" not in found.tags:
        # MLflow 3's UI opens an experiment of no kind on its GenAI traces page; these are training runs.
        mlflow.set_experiment_tag("mlflow.experimentKind", "custom_model_development")
    fail_orphans(mlflow, found.experiment_id)
    experiment = dvc_experiment()
    context = {"git_commit": git_commit(), "dataset": dataset, "host": socket.gethostname(), "pid": str(os.getpid()),
               "dvc_exp": experiment["name"] if experiment else "workspace"}
    if experiment and experiment["changed"]:  # the "Description" MLflow shows on the run's page
        context["mlflow.note.content"] = "DVC experiment {}: {}".format(experiment["name"], ", ".join(
            f"{key}={value}" for key, (_, value) in experiment["changed"].items()))
    with mlflow.start_run(run_name=run_name, tags={**context, **tags}):
        flat = flatten(params)
        for start in range(0, len(flat), 100):  # MLflow takes at most 100 params per call
            mlflow.log_params(dict(list(flat.items())[start:start + 100]))
        yield Run(mlflow)
