"""Shared test helpers: the repo's params with tiny sizes, and small sharp clips on disk."""

from __future__ import annotations

import copy
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
    p["train"].update(epochs=1, batch_size=2, checkpoint_every=2, threads=1)
    p["alanet"].update(width=0.0625, reduction=4)
    # The tiny `dvc repro` trains the ALANet family and evaluates one fixed method; every method
    # still passes the contract suite (tests/test_methods.py), built at these sizes.
    p["train"]["methods"] = ["alanet", "alanet_self", "alanet_cross"]
    p["evaluate"].update(methods=["blurry_input"], bootstrap=50, samples=1, threads=1)
    p["methods"].update(superslomo={"width": 0.0625}, cain={"features": 8, "groups": 1, "blocks": 1, "reduction": 2})
    return p


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
