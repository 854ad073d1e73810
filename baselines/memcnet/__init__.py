"""MEMC-Net (Bao et al., TPAMI 2019), in plain PyTorch and trained here; interpolation only.

FlowNetS flows, flow projection, per-pixel 4x4 kernels and occlusion maps from two U-Nets, the
adaptive warping layer and a rectification CNN (``models.memcnet`` gives the formulas and the
authors' files). Trained with the Charbonnier distance of the middle frame with ε = 1e-6, the
loss of the authors' DAIN code that shares this design, which is L1 to within 1e-6
(``models.losses.InterpolationL1``; ``loss: shared`` takes the train stage's eq. 8).

Differences from the paper: ``width`` scales every channel (1.0 = the published model, 67.3M
parameters); the published model starts from pretrained FlowNetS weights, which this repo does not
have, so every size trains from scratch here. With ``residual: true`` (the default) the flow head,
kernel and occlusion heads and rectification output start at zero flows, bilinear kernels, even
occlusion weights and no correction, so an untrained model is the blurry-input baseline
(``residual: false`` keeps the authors' random initialisation). The deblurred frames are the inputs.
"""

from dataclasses import dataclass
from typing import Annotated, Literal

from torch import nn

from alabench.config import Params, Range
from alabench.methods import Method, register
from alabench.released import released_weights
from alabench.training import overrides, shared_loss
from models.losses import InterpolationL1
from models.memcnet import MEMCNet


@dataclass(frozen=True)
class Options:
    width: Annotated[float, Range(0.03125, 4.0)] = 1.0  # channel multiplier of every sub-network
    residual: bool = True  # start as the blurry-input baseline (false: the authors' initialisation)
    loss: Literal["published", "shared"] = "published"  # Charbonnier (= L1) of the middle frame, or eq. 8
    # its own number of epochs, over train.epochs (0: train.epochs): a step costs several of alanet's
    epochs: Annotated[int, Range(0, 100000)] = overrides("train.epochs", 0)
    weights: str = released_weights()  # the authors' released checkpoint ('': train it here; docs/weights.md)


def build(params: Params, options: Options) -> MEMCNet:
    model = MEMCNet(options.width, options.residual)
    model.config = options  # recorded in the checkpoint by the train stage
    return model


def loss(params: Params, options: Options) -> nn.Module:
    return shared_loss(params) if options.loss == "shared" else InterpolationL1()


register(Method(
    name="memcnet",
    tasks=frozenset({"interpolate"}),
    trains=True,
    build=build,
    options=Options,
    loss=loss,
    description="MEMC-Net (Bao et al. 2019): flow projection, adaptive warping with occlusion maps, rectification",
))
