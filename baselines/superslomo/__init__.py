"""Super SloMo (Jiang et al., CVPR 2018), re-implemented and trained here; interpolation only.

Two U-Nets of the layout ALANet also builds on (``models.unet``), for each pair (I0, I1) and t = 1/2:

1. the flow U-Net maps [I0, I1] to the bidirectional flows F01, F10;
2. the flows from the middle frame, linearly approximated (paper eq. 4):
   F_t0 = -t(1-t) F01 + t^2 F10,  F_t1 = (1-t)^2 F01 - t(1-t) F10;
3. the refinement U-Net maps [I0, I1, F01, F10, F_t1, F_t0, g(I1, F_t1), g(I0, F_t0)] (20 channels)
   to flow corrections dF_t0, dF_t1 and a visibility map V_t0 = sigmoid(.), V_t1 = 1 - V_t0;
4. I_t = ((1-t) V_t0 g(I0, F_t0 + dF_t0) + t V_t1 g(I1, F_t1 + dF_t1)) / ((1-t) V_t0 + t V_t1),
   g a bilinear backward warp.

As the authors' code (avinashpaliwal/Super-SloMo ``model.py``, ``train.py``) computes it, so that their
released weights load: both U-Nets end in LeakyReLU(0.1) too, g is their ``backWarp`` (grid
normalised by W and H, corners aligned as their PyTorch 0.4 did, zeros outside the frame), and the
frames enter with the Adobe240 channel mean subtracted (added back to I_t): outside the frame g reads
that mean colour.

Trained with its published loss (``models.losses.SuperSloMoLoss``: reconstruction, perceptual,
warping, smoothness; ``loss: shared`` takes the train stage's eq. 8 loss instead, ``perceptual:
false`` drops the VGG term, which triples a CPU step). Differences from the paper: ``width``
scales the channels (1.0 = the published 32-...-512 plan);
both U-Nets' last layers start at zero, so an untrained model returns the mean of the two inputs
(flows 0, visibility 1/2; resampled by the authors' warp, which at zero flow reads p (W - 1) / W)
and training starts from the blurry-input baseline. Inputs are the (possibly blurry) frames, as in
the paper's Table 2. The deblurred frames are the inputs.
"""

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from alabench.config import Params, Range
from alabench.methods import Method, register
from alabench.released import released_weights
from alabench.training import shared_loss
from models.losses import PerceptualLoss, SuperSloMoLoss
from models.pairwise import PairwiseInterpolator
from models.unet import Encoder, Generator, channel_plan, init_weights

MEAN = (0.429, 0.431, 0.397)  # the authors' per-channel mean of the Adobe240 training frames (train.py)


@dataclass(frozen=True)
class Options:
    width: Annotated[float, Range(0.03125, 4.0)] = 1.0  # channel multiplier of both U-Nets
    loss: Literal["published", "shared"] = "published"  # Super SloMo's own loss, or the train stage's eq. 8
    perceptual: bool = True  # the published loss's VGG16 conv4_3 term
    weights: str = released_weights()  # the authors' released checkpoint ('': train it here; docs/weights.md)


class UNet(nn.Module):
    """Super SloMo's U-Net: ``models.unet``'s encoder and generator with other in / out channels, and
    LeakyReLU(0.1) on the output as well (the authors' ``UNet`` ends so)."""

    def __init__(self, channels: tuple[int, ...], inputs: int, outputs: int) -> None:
        super().__init__()
        self.encoder, self.decoder = Encoder(channels), Generator(channels)
        self.encoder.stem1 = nn.Conv2d(inputs, channels[0], 7, padding=3)
        self.decoder.out = nn.Conv2d(channels[0], outputs, 3, padding=1)
        init_weights(self.encoder.stem1)
        nn.init.zeros_(self.decoder.out.weight)
        nn.init.zeros_(self.decoder.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        return F.leaky_relu(self.decoder(feats[-1], feats[:-1]), 0.1)


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """out(p) ~ image(p + flow(p)); (N, C, H, W) image, (N, 2, H, W) flow in pixels (x, y). The authors'
    ``backWarp``: the grid divided by W and H (not W - 1, H - 1), so even a zero flow samples at
    p (W - 1) / W; zeros outside the frame."""
    n, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=flow.dtype, device=flow.device),
                            torch.arange(w, dtype=flow.dtype, device=flow.device), indexing="ij")
    gx = 2 * ((xs + flow[:, 0]) / w - 0.5)
    gy = 2 * ((ys + flow[:, 1]) / h - 0.5)
    return F.grid_sample(image, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="zeros", align_corners=True)


class SuperSloMo(PairwiseInterpolator):
    t = 0.5

    def __init__(self, options: Options) -> None:
        super().__init__()
        self.config = options  # recorded in the checkpoint by the train stage
        channels = channel_plan(options.width)
        self.flow_net = UNet(channels, 6, 4)
        self.refine_net = UNet(channels, 20, 5)
        self.extras: dict[str, torch.Tensor] = {}  # a training forward's intermediates, for SuperSloMoLoss

    def middle(self, i0: torch.Tensor, i1: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) frames padded to the U-Net's stride -> the frame at t = 1/2."""
        t, mean = self.t, i0.new_tensor(MEAN).view(1, 3, 1, 1)
        frames = (i0, i1)  # as given, for the loss
        i0, i1 = i0 - mean, i1 - mean  # the authors' normalised inputs
        flows = self.flow_net(torch.cat([i0, i1], 1))
        f01, f10 = flows[:, :2], flows[:, 2:]
        ft0, ft1 = -t * (1 - t) * f01 + t * t * f10, (1 - t) ** 2 * f01 - t * (1 - t) * f10
        g0, g1 = backward_warp(i0, ft0), backward_warp(i1, ft1)
        out = self.refine_net(torch.cat([i0, i1, f01, f10, ft1, ft0, g1, g0], 1))
        v0 = torch.sigmoid(out[:, 4:5])
        g0, g1 = backward_warp(i0, ft0 + out[:, :2]), backward_warp(i1, ft1 + out[:, 2:4])
        w0, w1 = (1 - t) * v0, t * (1 - v0)
        # What the published loss's warping and smoothness terms look at (nothing kept outside training).
        # Frames as given (the mean added back), so that the loss compares them with its targets.
        self.extras = {"i0": frames[0], "i1": frames[1], "f01": f01, "f10": f10,
                       "i0_to_t": backward_warp(i0, ft0) + mean, "i1_to_t": backward_warp(i1, ft1) + mean,
                       "i1_to_0": backward_warp(i1, f01) + mean, "i0_to_1": backward_warp(i0, f10) + mean,
                       } if self.training else {}
        return (w0 * g0 + w1 * g1) / (w0 + w1) + mean


def build(params: Params, options: Options) -> SuperSloMo:
    return SuperSloMo(options)


def loss(params: Params, options: Options) -> nn.Module:
    if options.loss == "shared":
        return shared_loss(params)
    if not options.perceptual:
        return SuperSloMoLoss(None)
    from alabench.weights import vgg16_features
    return SuperSloMoLoss(PerceptualLoss(vgg16_features(), ("relu4_3",)))


register(Method(
    name="superslomo",
    tasks=frozenset({"interpolate"}),
    trains=True,
    build=build,
    options=Options,
    loss=loss,
    description="Super SloMo (Jiang et al. 2018): flow U-Net, warping, visibility-weighted blending",
))
