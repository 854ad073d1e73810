"""Residual dense networks and a convolutional LSTM cell: the parts BIN (Shen et al. 2020) is built of.

Written from the BIN paper (§3) and the layout of its public model (laomao0/BIN, `models/archs/RDN.py`,
read, not copied): a residual dense block (RDB) concatenates the outputs of ``layers`` 3x3
convolutions of ``growth`` channels each, fuses them back to ``features`` channels with a 1x1
convolution and adds its input; a :class:`FrameRDN` folds ``inputs`` frames by pixel unshuffle (×2),
runs ``blocks`` RDBs, fuses all their outputs (global feature fusion), unfolds by pixel shuffle and
adds the mean of its inputs (its output is a correction to that mean).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DenseBlock(nn.Module):
    """Residual dense block: x + fuse(cat(x, c1, c2, ...)), each c_k = relu(conv3x3(cat(x, c1..c_{k-1})))."""

    def __init__(self, features: int, growth: int, layers: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(features + k * growth, growth, 3, padding=1) for k in range(layers))
        self.fuse = nn.Conv2d(features + layers * growth, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for conv in self.convs:
            y = torch.cat([y, F.relu(conv(y))], 1)
        return x + self.fuse(y)


class DenseTrunk(nn.Module):
    """``inputs`` frames (N, 3, H, W) each, H and W even -> corrections of ``outputs`` frames (N, 3·outputs, H, W).

    The authors' residual dense network: shallow features of the pixel-unshuffled frames, ``blocks``
    residual dense blocks of ``layers`` convolutions of ``growth`` channels, global feature fusion
    plus the shallow features, then up to full resolution. The last convolution starts at zero (``zero_out``)."""

    def __init__(self, inputs: int, outputs: int, features: int, growth: int, layers: int, blocks: int,
                 up: int, zero_out: bool = True) -> None:
        super().__init__()
        self.head1 = nn.Conv2d(3 * inputs * 4, features, 5, padding=2)
        self.head2 = nn.Conv2d(features, features, 3, padding=1)
        self.blocks = nn.ModuleList(DenseBlock(features, growth, layers) for _ in range(blocks))
        self.fusion = nn.Sequential(nn.Conv2d(blocks * features, features, 1),
                                    nn.Conv2d(features, features, 3, padding=1))
        self.up = nn.Conv2d(features, 4 * up, 3, padding=1)
        self.out = nn.Conv2d(up, 3 * outputs, 3, padding=1)
        if zero_out:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, *frames: torch.Tensor) -> torch.Tensor:
        shallow = self.head1(F.pixel_unshuffle(torch.cat(frames, 1), 2))
        x, outs = self.head2(shallow), []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        x = self.fusion(torch.cat(outs, 1)) + shallow
        return self.out(F.pixel_shuffle(self.up(x), 2))


class FrameRDN(DenseTrunk):
    """``inputs`` frames (N, 3, H, W) each, H and W even -> one frame: their mean plus a correction.

    ``zero_out``: the last layer starts at zero, so an untrained network returns its inputs' mean.
    """

    def __init__(self, inputs: int, features: int, growth: int, layers: int, blocks: int,
                 zero_out: bool = True) -> None:
        # the authors' 256 upsampling channels at 96 features
        super().__init__(inputs, 1, features, growth, layers, blocks, max(1, round(features * 2 / 3)), zero_out)

    def forward(self, *frames: torch.Tensor) -> torch.Tensor:
        return super().forward(*frames) + sum(frames) / len(frames)


class ConvLSTMCell(nn.Module):
    """A convolutional LSTM cell (Shi et al. 2015), forget-gate bias +1 as in BIN; state = (c, h)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(channels + hidden, 4 * hidden, 3, padding=1)
        nn.init.xavier_uniform_(self.gates.weight)
        nn.init.zeros_(self.gates.bias)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden, *x.shape[2:])
            state = (zeros, zeros)
        c, h = state
        i, g, f, o = self.gates(torch.cat([x, h], 1)).chunk(4, 1)
        c = c * torch.sigmoid(f + 1.0) + torch.sigmoid(i) * torch.tanh(g)
        h = torch.tanh(c) * torch.sigmoid(o)
        return h, (c, h)
