"""The U-Net halves that ALANet splits into encoder E and generator G (paper §4.4).

The layout is the Super SloMo U-Net that ALANET builds on (paper ref. [9]): a 7×7 stem, five
"average-pool, conv, conv" levels, and an expanding path of "bilinear ×2, conv, concat skip,
conv" blocks, LeakyReLU(0.1) throughout. At width 1.0 the channel plan is 32-64-128-256-512-512.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

BASE_CHANNELS = (32, 64, 128, 256, 512, 512)
STRIDE = 2 ** (len(BASE_CHANNELS) - 1)  # the authors' encoder's total downsampling (5 levels)


def channel_plan(width: float, levels: int = len(BASE_CHANNELS) - 1) -> tuple[int, ...]:
    """Channels of the stem and of each of ``levels`` downsampling levels at a width multiplier (at
    least 4 per level); the latent then lies at stride ``2 ** levels``."""
    return tuple(max(4, int(round(c * width))) for c in BASE_CHANNELS[:levels + 1])


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


def init_weights(module: nn.Module) -> None:
    """He initialisation for LeakyReLU(0.1): keeps activations at one scale through the 10+ layers,
    so the latent path is alive from the start (PyTorch's default shrinks it ~1e6-fold here)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")
            nn.init.zeros_(m.bias)


def initialise_by_name(model: nn.Module, init: Callable[[str, nn.Module], None]) -> None:
    """Re-draw each submodule's own parameters with ``init(name, module)`` from a generator seeded by
    (``torch.initial_seed()``, the submodule's name). Two models built after the same seed then
    start identical in every submodule they share by name and shape, whatever else they hold: the
    ablation variants differ by their attention only, not by initialisation noise."""
    base = torch.initial_seed()
    for name, module in model.named_modules():
        if next(module.parameters(recurse=False), None) is None:
            continue
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((base * 1_000_003 + zlib.crc32(name.encode())) % 2 ** 63)
            init(name, module)


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv2d(cout, cout, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _act(self.conv2(_act(self.conv1(F.avg_pool2d(x, 2)))))


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int, cskip: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout + cskip, cout, 3, padding=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = _act(self.conv1(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)))
        return _act(self.conv2(torch.cat([x, skip], dim=1)))


class Encoder(nn.Module):
    """E: (N, 3, H, W) -> skips at strides 1..16 and the bottleneck latent at stride 32."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.stem1 = nn.Conv2d(3, channels[0], 7, padding=3)
        self.stem2 = nn.Conv2d(channels[0], channels[0], 7, padding=3)
        kernels = [5] + [3] * (len(channels) - 2)
        self.downs = nn.ModuleList(_Down(a, b, k) for a, b, k in zip(channels[:-1], channels[1:], kernels))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [_act(self.stem2(_act(self.stem1(x))))]
        for down in self.downs:
            feats.append(down(feats[-1]))
        return feats  # feats[-1] is the latent x_i; feats[:-1] are the skips


class Generator(nn.Module):
    """G: a latent and the skips of its frame -> (N, 3, H, W) image (or residual)."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        rev = channels[::-1]
        self.ups = nn.ModuleList(_Up(a, b, b) for a, b in zip(rev[:-1], rev[1:]))
        self.out = nn.Conv2d(channels[0], 3, 3, padding=1)
        init_weights(self)

    def forward(self, z: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for up, skip in zip(self.ups, reversed(skips)):
            z = up(z, skip)
        return self.out(z)
