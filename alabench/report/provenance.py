"""Where the page's numbers came from: the commit, the DVC experiment, the dvc.lock hashes of the
results, training histories and checkpoints shown, the params sections they depend on, the machine."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any

import yaml

from alabench.layout import CHECKPOINTS, RESULTS, TRAINING
from alabench.tracking import dvc_experiment, git_commit

LOCKED = tuple(f"{folder}/" for folder in (RESULTS, TRAINING, CHECKPOINTS))  # the outputs whose hashes are shown
SECTIONS = ("report", "evaluate", "blur")  # the params.yaml sections printed on the page


def locked_hashes(root: Path) -> list[dict[str, str]]:
    """(stage, path, md5) of every output of dvc.lock under results/, training/ or checkpoints/ that is here."""
    lock = root / "dvc.lock"
    if not lock.is_file():
        return []
    hashes = []
    for name, stage in sorted(((yaml.safe_load(lock.read_text()) or {}).get("stages", {})).items()):
        for out in stage.get("outs", []):
            path = str(out.get("path", ""))
            if path.startswith(LOCKED) and (root / path).exists():
                hashes.append({"stage": name, "path": out["path"], "md5": out.get("md5", "–")})
    return hashes


def provenance(root: Path) -> dict[str, Any]:
    """Where the numbers came from: commit, dvc.lock hashes of results / training / checkpoints, params."""
    raw = yaml.safe_load((root / "params.yaml").read_text()) if (root / "params.yaml").is_file() else {}
    used = {key: raw.get(key) for key in SECTIONS if key in raw}
    return {
        "commit": git_commit(), "hashes": locked_hashes(root), "params": yaml.safe_dump(used, sort_keys=False),
        "experiment": dvc_experiment(root / "params.yaml"),   # None outside `dvc exp run`
        "machine": f"{platform.node()} · {platform.platform()} · {os.cpu_count()} CPUs · "
                   f"Python {platform.python_version()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
