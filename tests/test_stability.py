"""Training that stays stable: ``train.grad_clip`` bounds every step's gradient norm, as the optimiser sees it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from conftest import tiny_params
from torch import nn
from torch.utils.data import Dataset

from alabench.config import parse_params
from alabench.training import Distributed, train
from models.losses import ReconstructionLoss

ONE = Distributed(0, 1, torch.device("cpu"))


class Windows(Dataset):
    """Seeded random windows: 3 inputs, 3 deblur and 2 interpolation targets of 8x8 pixels."""

    def __init__(self, count: int) -> None:
        g = torch.Generator().manual_seed(3)
        self.items = [{"inputs": torch.rand(3, 3, 8, 8, generator=g), "deblur": torch.rand(3, 3, 8, 8, generator=g),
                       "interp": torch.rand(2, 3, 8, 8, generator=g)} for _ in range(count)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]


class Scaled(nn.Module):
    """A per-pixel model with a large gain, so unclipped gradients are far above the clip."""

    window = 3

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        nn.init.constant_(self.conv.weight, 50.0)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.conv(frames.flatten(0, 1)).unflatten(0, frames.shape[:2])
        return out, (out[:, :-1] + out[:, 1:]) / 2


class NormRecordingSGD(torch.optim.SGD):
    """SGD that notes the global gradient norm it is handed at every step."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.norms: list[float] = []

    def step(self, closure=None):  # type: ignore[override]
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return super().step(closure)


def norms_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grad_clip: float) -> list[float]:
    made: list[NormRecordingSGD] = []

    def adam(params, lr, weight_decay):  # the loop's Adam, replaced by a recording SGD of the same rate
        made.append(NormRecordingSGD(params, lr=lr))
        return made[-1]

    monkeypatch.setattr(torch.optim, "Adam", adam)
    cfg = dataclasses.replace(parse_params(tiny_params()).train, epochs=1, batch_size=2, lr=1e-6, grad_clip=grad_clip,
                              checkpoint_every=1000)
    train(Scaled(), ReconstructionLoss(None, 0.0), Windows(8), Windows(2), cfg, ONE, tmp_path / f"s{grad_clip}.pt", {})
    return made[0].norms


def test_grad_clip_bounds_the_norm_the_optimiser_steps_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    free = norms_seen(tmp_path, monkeypatch, 0.0)
    assert len(free) == 4 and min(free) > 0.6  # unclipped, the gradients are larger than the clip
    clipped = norms_seen(tmp_path, monkeypatch, 0.1)
    assert len(clipped) == 4
    assert max(clipped) == pytest.approx(0.1, rel=1e-5)  # clipped to exactly the bound, never above
