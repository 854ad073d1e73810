"""CAIN, "Channel Attention Is All You Need for Video Frame Interpolation" (Choi et al., AAAI 2020),
re-implemented and trained here; interpolation only.

No flow: each input is mean-subtracted (per channel) and folded into channels by pixel unshuffle
(space to depth, ×2^depth), the two are concatenated and fused by a 3×3 convolution into
``features`` channels, passed through ``groups`` residual groups of ``blocks`` residual channel
attention blocks (RCAB, as in RCAN, with LeakyReLU(0.2) and reflection-padded convolutions as the
authors' code has them), and unfolded back by pixel shuffle. The channel attention F
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
from alabench.methods import Method, register
from alabench.released import released_weights
from alabench.training import overrides, shared_loss
from models.losses import InterpolationL1
from models.alanet import ChannelAttention, pad_frames
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
    # its own learning rate, over train.lr (0: train.lr); published 1e-4
    lr: Annotated[float, Range(0.0, 1.0)] = overrides("train.lr", 0.0)
    weights: str = released_weights()  # the authors' released checkpoint ('': train it here; docs/weights.md)


def reflect_conv(channels: int) -> nn.Conv2d:
    """A 3x3 convolution on reflection-padded input: the authors' ``ConvNorm`` (``ReflectionPad2d`` + conv)."""
    return nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")


class RCAB(nn.Module):
    """Residual channel attention block: x + CA(conv(leaky_relu(conv(x)))), LeakyReLU(0.2) as the
    authors' ``Encoder`` passes to every block."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(reflect_conv(channels), nn.LeakyReLU(0.2, inplace=True), reflect_conv(channels))
        self.attention = ChannelAttention(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y * self.attention(y)


class ResidualGroup(nn.Sequential):
    def __init__(self, channels: int, reduction: int, blocks: int) -> None:
        super().__init__(*(RCAB(channels, reduction) for _ in range(blocks)), reflect_conv(channels))

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
        """(N, 3, H, W) frames -> the frame midway. Padded (replicate) to multiples of 2^(depth + 1): the
        reflection padding needs a folded grid of 2x2 at least."""
        h, w = i0.shape[-2:]
        i0, i1 = pad_frames(torch.stack([i0, i1], 1), 2 * self.scale)[0].unbind(1)
        m0, m1 = i0.mean((2, 3), keepdim=True), i1.mean((2, 3), keepdim=True)
        x = torch.cat([F.pixel_unshuffle(i0 - m0, self.scale), F.pixel_unshuffle(i1 - m1, self.scale)], 1)
        x = self.head(x)
        out = F.pixel_shuffle(self.tail(x + self.body(x)), self.scale)
        out = out + ((i0 + i1) / 2 if self.config.residual else (m0 + m1) / 2)
        out = out[..., :h, :w]
        return out if self.training else out.clamp(0, 1)  # a frame once trained; unbounded for the loss


def build(params: Params, options: Options) -> CAIN:
    return CAIN(options)


def loss(params: Params, options: Options) -> nn.Module:
    return shared_loss(params) if options.loss == "shared" else InterpolationL1()


register(Method(
    name="cain",
    tasks=frozenset({"interpolate"}),
    trains=True,
    build=build,
    options=Options,
    loss=loss,
    description="CAIN (Choi et al. 2020): pixel shuffle and residual channel attention, no flow",
))
