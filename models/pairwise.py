"""The shape shared by interpolation-only networks: each middle frame from its two neighbours alone."""

from __future__ import annotations

import torch
from torch import nn

from models.alanet import ALANet


class PairwiseInterpolator(nn.Module):
    """(B, W, 3, H, W) -> (the inputs as deblurred frames, (B, W-1, 3, H, W) middles), any W >= 2.

    Subclasses define ``middle(i0, i1)`` on (N, 3, H, W) frames replicate-padded to a multiple of
    32 (cropped back here); every consecutive pair of every window goes through it in one batch.
    """

    window = 2

    def middle(self, i0: torch.Tensor, i1: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, w, _, h, wd = frames.shape
        padded, _ = ALANet.pad(frames)
        middle = self.middle(padded[:, :-1].flatten(0, 1), padded[:, 1:].flatten(0, 1))
        return frames, middle.unflatten(0, (b, w - 1))[..., :h, :wd]
