"""PWC-Net (Sun et al., CVPR 2018), the PWC-DC variant DAIN uses as its flow network, in plain PyTorch.

A six-level feature pyramid of each frame (stride 2 per level); from the coarsest level up to level 2
(1/4 resolution): the second frame's features are warped by the upsampled flow of the level below,
correlated with the first frame's (``models.correlation``, max displacement ``md``), and a densely
connected estimator (each conv's output concatenated in front of its input) predicts the level's
flow; level 2's is refined by a context network of dilated convolutions. Returns the level-2 flow,
in units of 1/20 pixel of the input, as the authors' network does (DAIN multiplies by 20).

Follows DAIN ``PWCNet/PWCNet.py`` (``PWCDCNet``, l. 41-314 at 7c727ac); ``width`` scales every
channel count (1.0: the published 16-32-64-96-128-196 pyramid and 128-128-96-64-32 estimators).
The authors' ``deconv2`` is built but never used (their forward stops at level 2): it is left out,
66 parameters fewer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.correlation import correlation

PYRAMID = (16, 32, 64, 96, 128, 196)  # feature channels at levels 1..6
ESTIMATOR = (128, 128, 96, 64, 32)  # each dense estimator's convs
CONTEXT = ((128, 1), (128, 2), (128, 4), (96, 8), (64, 16), (32, 1))  # (channels, dilation)
STRIDE = 64  # the input's sides must be multiples of 2^6


def scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def conv(inputs: int, outputs: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride, dilation, dilation), nn.LeakyReLU(0.1))


def backward_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """x(p + flow(p)), bilinear, zero where the 2x2 footprint leaves the image (the authors' mask)."""
    _, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype, device=x.device),
                            torch.arange(w, dtype=x.dtype, device=x.device), indexing="ij")
    grid = torch.stack([2 * (xs + flow[:, 0]) / max(w - 1, 1) - 1, 2 * (ys + flow[:, 1]) / max(h - 1, 1) - 1], -1)
    out = F.grid_sample(x, grid, align_corners=True)
    mask = F.grid_sample(torch.ones_like(x[:, :1]), grid, align_corners=True)
    return out * (mask >= 0.9999).to(x.dtype)


class Estimator(nn.Module):
    """One level's densely connected flow estimator: x <- cat(conv_k(x), x), then a flow head."""

    def __init__(self, inputs: int, width: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        for channels in ESTIMATOR:
            self.convs.append(conv(inputs, scaled(channels, width)))
            inputs += scaled(channels, width)
        self.channels = inputs
        self.flow = nn.Conv2d(inputs, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.convs:
            x = torch.cat([layer(x), x], 1)
        return x, self.flow(x)


class PWCNet(nn.Module):
    def __init__(self, width: float = 1.0, md: int = 4) -> None:
        super().__init__()
        self.md = md
        pyramid = [scaled(c, width) for c in PYRAMID]
        self.pyramid = nn.ModuleList()
        inputs = 3
        for channels in pyramid:
            # conv_a (stride 2), conv_aa, conv_b; the authors' level 6 orders them aa (stride 2), a, b
            self.pyramid.append(nn.Sequential(conv(inputs, channels, stride=2), conv(channels, channels),
                                              conv(channels, channels)))
            inputs = channels
        cost = (2 * md + 1) ** 2
        self.estimators = nn.ModuleList()
        self.up_flows = nn.ModuleList()
        self.up_feats = nn.ModuleList()
        for level in range(6, 1, -1):  # 6 (cost volume only) .. 2 (+ features, upsampled flow and features)
            estimator = Estimator(cost if level == 6 else cost + pyramid[level - 1] + 4, width)
            self.estimators.append(estimator)
            if level > 2:
                self.up_flows.append(nn.ConvTranspose2d(2, 2, 4, 2, 1))
                self.up_feats.append(nn.ConvTranspose2d(estimator.channels, 2, 4, 2, 1))
        layers, inputs = [], self.estimators[-1].channels
        for channels, dilation in CONTEXT:
            layers.append(conv(inputs, scaled(channels, width), dilation=dilation))
            inputs = scaled(channels, width)
        self.context = nn.Sequential(*layers, nn.Conv2d(inputs, 2, 3, padding=1))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in")
                nn.init.zeros_(m.bias)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) x2, H and W multiples of 64 -> (N, 2, H/4, W/4) flow first -> second, in 1/20 px."""
        feats1, feats2 = [], []
        x = torch.cat([first, second])
        for level in self.pyramid:  # both frames in one batch: the same weights
            x = level(x)
            f1, f2 = x.chunk(2)
            feats1.append(f1)
            feats2.append(f2)
        flow = features = None
        for i, level in enumerate(range(6, 1, -1)):
            f1, f2 = feats1[level - 1], feats2[level - 1]
            if flow is not None:
                # the flow is in 1/20 px at the input's resolution: 20 / 2^level px here
                f2 = backward_warp(f2, flow * (20.0 / 2 ** level))
            cost = F.leaky_relu(correlation(f1, f2, self.md), 0.1)
            x = cost if flow is None else torch.cat([cost, f1, flow, features], 1)
            x, flow = self.estimators[i](x)
            if level > 2:
                flow, features = self.up_flows[i](flow), self.up_feats[i](x)
        return flow + self.context(x)
