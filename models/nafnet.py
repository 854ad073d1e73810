"""A NAFNet-style single-image restorer (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022).

Written from the paper (§3-4): a U-Net of NAF blocks. A NAF block is two residual halves, each
scaled by a learnt per-channel factor that starts at zero (so a fresh block is the identity):
LayerNorm -> 1x1 conv (×2 channels) -> 3x3 depthwise conv -> SimpleGate (split the channels in two
halves and multiply them) -> simplified channel attention (x * conv1x1(avgpool(x))) -> 1x1 conv;
then LayerNorm -> 1x1 conv (×2) -> SimpleGate -> 1x1 conv. Down: 2x2 conv stride 2 doubling the
channels; up: 1x1 conv + pixel shuffle halving them; skips added; the output is added to the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.GroupNorm):
    """NAFNet's LayerNorm: each pixel normalised across its channels (GroupNorm's affine weights reused;
    its own forward would normalise over the whole (C, H, W)); eps 1e-6 as the authors' ``LayerNorm2d``."""

    def __init__(self, channels: int) -> None:
        super().__init__(1, channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps) * self.weight[:, None, None] + self.bias[:, None, None]


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, 1)
    return a * b


class NAFBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = LayerNorm2d(c), LayerNorm2d(c)
        self.expand = nn.Conv2d(c, 2 * c, 1)
        self.depthwise = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.attention = nn.Conv2d(c, c, 1)  # simplified channel attention on the pooled features
        self.project = nn.Conv2d(c, c, 1)
        self.ffn_in, self.ffn_out = nn.Conv2d(c, 2 * c, 1), nn.Conv2d(c, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = simple_gate(self.depthwise(self.expand(self.norm1(x))))
        y = self.project(y * self.attention(F.adaptive_avg_pool2d(y, 1)))
        x = x + y * self.beta
        return x + self.ffn_out(simple_gate(self.ffn_in(self.norm2(x)))) * self.gamma


class NAFNet(nn.Module):
    """(N, 3, H, W) in [0, 1], H and W multiples of 2^len(encoder) -> (N, 3, H, W): input + correction."""

    def __init__(self, width: int, encoder: tuple[int, ...], middle: int, decoder: tuple[int, ...]) -> None:
        super().__init__()
        if len(encoder) != len(decoder):
            raise ValueError(f"NAFNet: encoder {encoder} and decoder {decoder} need as many levels")
        self.intro = nn.Conv2d(3, width, 3, padding=1)
        self.encoders, self.downs, self.ups, self.decoders = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        c = width
        for n in encoder:
            self.encoders.append(nn.Sequential(*(NAFBlock(c) for _ in range(n))))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*(NAFBlock(c) for _ in range(middle)))
        for n in decoder:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*(NAFBlock(c) for _ in range(n))))
        self.ending = nn.Conv2d(width, 3, 3, padding=1)
        self.levels = len(encoder)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x, skips = self.intro(image), []
        for encode, down in zip(self.encoders, self.downs):
            x = encode(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        for up, decode, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = decode(up(x) + skip)
        return self.ending(x) + image
