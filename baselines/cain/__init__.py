"""CAIN, "Channel Attention Is All You Need for Video Frame Interpolation" (Choi et al., AAAI 2020),
re-implemented and trained here; interpolation only.

No flow: each input is mean-subtracted (per channel) and folded into channels by pixel unshuffle
(space to depth, ×2^depth), the two are concatenated and fused by a 3×3 convolution into
``features`` channels, passed through ``groups`` residual groups of ``blocks`` residual channel
attention blocks (RCAB, as in RCAN), and unfolded back by pixel shuffle. The channel attention F
is the RCAN one ALANet also uses (``models.alanet.ChannelAttention``).

Trained with its published loss, L1 of the middle frame (``loss: shared`` takes the train stage's
eq. 8 loss instead). Differences from the paper: the output is a correction added to the mean of the
two inputs (the paper adds the inputs' mean colour) and the last layer starts at zero, so an
untrained model is the blurry-input baseline (set ``residual: false`` for the paper's form); the
published size is ``features: 192, groups: 5, blocks: 12``. The deblurred frames are the inputs.
"""

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from alabench.config import Params, Range
from alabench.methods import Method, method_options, register
from alabench.training import shared_loss
from models.losses import InterpolationL1
from models.alanet import ChannelAttention
from models.pairwise import PairwiseInterpolator


@dataclass(frozen=True)
class Options:
    features: Annotated[int, Range(4, 1024)] = 192
    groups: Annotated[int, Range(1, 32)] = 5
    blocks: Annotated[int, Range(1, 64)] = 12  # RCABs per group
    reduction: Annotated[int, Range(1, 256)] = 16  # of the channel attention
    depth: Annotated[int, Range(1, 5)] = 3  # pixel unshuffle by 2^depth
    residual: bool = True
    loss: Literal["published", "shared"] = "published"  # L1 of the middle frame, or the train stage's eq. 8
    lr: Annotated[float, Range(0.0, 1.0)] = 0.0  # its own learning rate (0: train.lr); published 1e-4


class RCAB(nn.Module):
    """Residual channel attention block: x + CA(conv(relu(conv(x))))."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1))
        self.attention = ChannelAttention(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y * self.attention(y)


class ResidualGroup(nn.Sequential):
    def __init__(self, channels: int, reduction: int, blocks: int) -> None:
        super().__init__(*(RCAB(channels, reduction) for _ in range(blocks)),
                         nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


class CAIN(PairwiseInterpolator):
    def __init__(self, options: Options) -> None:
        super().__init__()
        self.config = options  # recorded in the checkpoint by the train stage
        self.scale = 2 ** options.depth
        folded = 3 * self.scale ** 2
        self.head = nn.Conv2d(2 * folded, options.features, 3, padding=1)
        self.body = nn.Sequential(*(ResidualGroup(options.features, options.reduction, options.blocks)
                                    for _ in range(options.groups)))
        self.tail = nn.Conv2d(options.features, folded, 3, padding=1)
        if options.residual:
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def middle(self, i0: torch.Tensor, i1: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) frames, H and W multiples of 2^depth -> the frame midway."""
        m0, m1 = i0.mean((2, 3), keepdim=True), i1.mean((2, 3), keepdim=True)
        x = torch.cat([F.pixel_unshuffle(i0 - m0, self.scale), F.pixel_unshuffle(i1 - m1, self.scale)], 1)
        x = self.head(x)
        out = F.pixel_shuffle(self.tail(x + self.body(x)), self.scale)
        out = out + ((i0 + i1) / 2 if self.config.residual else (m0 + m1) / 2)
        return out if self.training else out.clamp(0, 1)  # a frame once trained; unbounded for the loss


def build(params: Params) -> CAIN:
    return CAIN(method_options(params, "cain", Options))


def loss(params: Params) -> nn.Module:
    return shared_loss(params) if method_options(params, "cain", Options).loss == "shared" else InterpolationL1()


register(Method(
    name="cain",
    tasks=frozenset({"interpolate"}),
    trains=True,
    build=build,
    options=Options,
    loss=loss,
    description="CAIN (Choi et al. 2020): pixel shuffle and residual channel attention, no flow",
))
