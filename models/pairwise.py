"""The shape shared by interpolation-only networks: each middle frame from its two neighbours alone."""

from __future__ import annotations

import torch
from torch import nn

from models.alanet import pad_frames


class PairwiseInterpolator(nn.Module):
    """(B, W, 3, H, W) -> (the inputs as deblurred frames, (B, W-1, 3, H, W) middles), any W >= 2.

    Subclasses define ``middle(i0, i1)`` on (N, 3, H, W) frames replicate-padded to a multiple of
    32 (cropped back here); every consecutive pair of every window goes through it in one batch.
    """

    window = 2

    def middle(self, i0: torch.Tensor, i1: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # Incremental (alabench.methods): a frame's "features" are the frame, so that clip inference
    # makes exactly one middle per pair (sliding windows make one towards the clip's repeated end).

    def encode_frames(self, frames: torch.Tensor) -> list[torch.Tensor]:
        return [frames]

    def deblur_at(self, window: list[list[torch.Tensor]], i: int) -> torch.Tensor:
        return window[i][0]

    def interp_at(self, window: list[list[torch.Tensor]], i: int) -> torch.Tensor:
        (a,), (b,) = window[i], window[i + 1]
        padded, (h, w) = pad_frames(torch.stack([a, b], 1))
        return self.middle(padded[:, 0], padded[:, 1])[..., :h, :w]

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, w, _, h, wd = frames.shape
        padded, _ = pad_frames(frames)
        middle = self.middle(padded[:, :-1].flatten(0, 1), padded[:, 1:].flatten(0, 1))
        return frames, middle.unflatten(0, (b, w - 1))[..., :h, :wd]
