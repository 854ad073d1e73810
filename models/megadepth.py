"""The hourglass depth network DAIN takes from MegaDepth (Li & Snavely, CVPR 2018; the network of Chen
et al., "Single-Image Depth Perception in the Wild", NIPS 2016), in plain PyTorch.

A 7x7 conv (3 -> 128, BatchNorm, ReLU), four nested hourglass levels of inception modules, a 3x3
conv to one channel: the log of the depth. Each level is ``plain(x) + up(inner(pool(x)))``; an
inception module concatenates a 1x1 branch and branches of a 1x1 reduction followed by a k x k conv,
every conv followed by a parameter-free BatchNorm (``affine=False``) and ReLU.

Follows DAIN ``MegaDepth/pytorch_DIW_scratch.py`` (a Torch7 export, l. 31-762 at 7c727ac): the
inception configurations below are read from it, level by level (``Channels4`` .. ``Channels1`` in
Chen et al.'s code). ``width`` scales every channel count (1.0: the published network).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# An inception module: (1x1 branch channels, ((reduction, channels, kernel), ...)), input given by the caller.
A = (32, ((32, 32, 3), (32, 32, 5), (32, 32, 7)))  # 128 -> 128
B = (64, ((32, 64, 3), (32, 64, 5), (32, 64, 7)))  # -> 256
WIDE = (64, ((64, 64, 3), (64, 64, 7), (64, 64, 11)))  # 256 -> 256
# Each level: (pool, input channels, plain branch, pooled branch before / after the inner level, inner level).
LEVEL1 = ("avg", 256, (B, B), (B, B, B), (), None)
LEVEL2 = ("avg", 256, (B, WIDE), (B, B), (B, WIDE), LEVEL1)
LEVEL3 = ("max", 128, (A, (32, ((64, 32, 3), (64, 32, 7), (64, 32, 11)))), (A, B), (B, A), LEVEL2)
LEVEL4 = ("max", 128, ((16, ((64, 16, 3), (64, 16, 7), (64, 16, 11))),), (A, A),
          ((32, ((64, 32, 3), (64, 32, 5), (64, 32, 7))), (16, ((32, 16, 3), (32, 16, 7), (32, 16, 11)))), LEVEL3)


def scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def conv_bn_relu(inputs: int, outputs: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, kernel, padding=kernel // 2),
                         nn.BatchNorm2d(outputs, affine=False), nn.ReLU())


class Inception(nn.Module):
    def __init__(self, inputs: int, config: tuple, width: float) -> None:
        super().__init__()
        first, branches = config
        self.branches = nn.ModuleList([conv_bn_relu(inputs, scaled(first, width), 1)] + [
            nn.Sequential(conv_bn_relu(inputs, scaled(reduce, width), 1),
                          conv_bn_relu(scaled(reduce, width), scaled(out, width), k))
            for reduce, out, k in branches])
        self.channels = scaled(first, width) + sum(scaled(out, width) for _, out, _ in branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], 1)


def inceptions(inputs: int, configs: tuple, width: float) -> tuple[nn.Sequential, int]:
    """A chain of inception modules and its output channels."""
    modules = []
    for config in configs:
        modules.append(Inception(inputs, config, width))
        inputs = modules[-1].channels
    return nn.Sequential(*modules), inputs


class Level(nn.Module):
    """plain(x) + upsample(after(inner(before(pool(x))))), nearest-neighbour upsampling."""

    def __init__(self, spec: tuple, width: float) -> None:
        super().__init__()
        pool, inputs, plain, before, after, inner = spec
        self.pool = nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)
        self.plain, self.channels = inceptions(scaled(inputs, width), plain, width)
        self.before, channels = inceptions(scaled(inputs, width), before, width)
        self.inner = Level(inner, width) if inner is not None else nn.Identity()
        self.after, _ = inceptions(self.inner.channels if inner is not None else channels, after, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.after(self.inner(self.before(self.pool(x))))
        return self.plain(x) + F.interpolate(y, scale_factor=2, mode="nearest")


class HourGlass(nn.Module):
    """(N, 3, H, W), H and W multiples of 16 -> (N, 1, H, W) log depth."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        stem = scaled(128, width)
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 7, padding=3), nn.BatchNorm2d(stem), nn.ReLU())
        self.hourglass = Level(LEVEL4, width)
        self.head = nn.Conv2d(self.hourglass.channels, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hourglass(self.stem(x)))
