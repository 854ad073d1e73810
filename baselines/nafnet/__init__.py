"""A NAFNet-style deblurring network (Chen et al., ECCV 2022), trained here; deblurring only.

Why this one: it is a single-image restorer whose published GoPro deblurring model (width 32,
blocks 1-1-1-28 / 1 / 1-1-1-1, 17.1M parameters) sets the state of the art with nothing but
convolutions, gates and a global pooling, so it shrinks to the CPU budget by two knobs (``width``,
``blocks``) without changing its design; SRN-DeblurNet's scale-recurrent ConvLSTM would cost
three passes per frame. Each input is deblurred on its own (``models.nafnet``); the interpolated
frames are the mean of the two *inputs*, so its row shows what its deblurring alone does, and the
cascades (``evaluate.cascades``) put an interpolation method after it.

Trained with its published loss (``PSNRLoss``, NAFNet's GoPro setting): the mean over frames of
10 log10(MSE + 1e-8) of each deblurred input against its sharp frame, i.e. minus its PSNR;
``loss: shared`` takes the train stage's eq. 8 loss instead. The loss is negative, so the train
stage's divergence guard (a loss 100x the first step's) fires only once it turns positive, an MSE
above 1 on [0, 1] images; its validation guard holds as for every method. Difference from the
paper: its last layer starts at zero, so an untrained model returns its input (the blurry-input
baseline).
"""

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from torch import nn

from alabench.config import ParamError, Params, Range
from alabench.methods import Features, Method, register
from alabench.released import released_weights
from alabench.training import shared_loss
from models.alanet import pad_frames
from models.nafnet import NAFNet


@dataclass(frozen=True)
class Options:
    width: Annotated[int, Range(4, 256)] = 32  # channels at full resolution (doubled at each level)
    encoder: tuple[int, ...] = (1, 1, 1, 28)  # NAF blocks per encoder level (published, GoPro)
    middle: Annotated[int, Range(0, 64)] = 1
    decoder: tuple[int, ...] = (1, 1, 1, 1)
    loss: Literal["published", "shared"] = "published"  # PSNRLoss of the deblurred inputs, or the train stage's eq. 8
    weights: str = released_weights()  # the authors' released checkpoint ('': train it here; docs/weights.md)


class FrameDeblurrer(nn.Module):
    """Window of 2 (the smallest the interface takes): each input deblurred alone, middles = input means.

    Incremental: a frame's features are the frame, so clip inference deblurs each input once."""

    window = 2

    def __init__(self, options: Options) -> None:
        super().__init__()
        self.config = options  # recorded in the checkpoint by the train stage
        self.net = NAFNet(options.width, options.encoder, options.middle, options.decoder)
        nn.init.zeros_(self.net.ending.weight)
        nn.init.zeros_(self.net.ending.bias)

    def deblur(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 3, H, W), any size (replicate-padded to the network's stride)."""
        padded, (h, w) = pad_frames(frames)
        return self.net(padded)[..., :h, :w]

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        deblur = self.deblur(frames.flatten(0, 1)).unflatten(0, frames.shape[:2])
        return deblur, (frames[:, 1:] + frames[:, :-1]) / 2

    def encode_frames(self, frames: torch.Tensor) -> Features:
        return [frames]

    def deblur_at(self, window: list[Features], i: int) -> torch.Tensor:
        return self.deblur(window[i][0])

    def interp_at(self, window: list[Features], i: int) -> torch.Tensor:
        return (window[i][0] + window[i + 1][0]) / 2


def build(params: Params, options: Options) -> FrameDeblurrer:
    if len(options.encoder) != len(options.decoder) or not options.encoder:
        raise ParamError("methods.nafnet: encoder and decoder must list blocks for the same number of levels "
                         f"(at least 1), got {list(options.encoder)} and {list(options.decoder)}")
    return FrameDeblurrer(options)


class PSNRLoss(nn.Module):
    """NAFNet's published loss on the deblurred inputs: mean over frames of 10 log10(MSE + 1e-8)."""

    def forward(self, outputs: list[torch.Tensor], targets: list[torch.Tensor], **_: object) -> dict[str, torch.Tensor]:
        mse = ((outputs[0].float() - targets[0].float()) ** 2).flatten(2).mean(2)  # (B, W): one per frame
        psnr_loss = 10 / math.log(10) * torch.log(mse + 1e-8).mean()
        return {"psnr": psnr_loss, "total": psnr_loss}


def loss(params: Params, options: Options) -> nn.Module:
    return shared_loss(params) if options.loss == "shared" else PSNRLoss()


register(Method(
    name="nafnet",
    tasks=frozenset({"deblur"}),
    trains=True,
    build=build,
    options=Options,
    loss=loss,
    description="NAFNet-style deblurring (Chen et al. 2022): U-Net of NAF blocks, each frame alone; middles = input means",
))
