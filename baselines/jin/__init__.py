"""Jin, Hu and Favaro (CVPR 2019): DeblurNet makes keyframes, InterpNet the frames between; see ``models.jin``.

The paper's Table 2 "Jin †" row (its reference [10] names the CVPR 2018 single-image paper, but its
text describes DeblurNet and InterpNet: this one). Trained jointly from the first step, on its own
4-input windows (DeblurNet's inputs), by the shared eq. 8 loss on the keyframes and the middles.
"""

from dataclasses import dataclass
from typing import Annotated

from torch import nn

from alabench.config import Params, Range
from alabench.methods import TASKS, Method, register
from alabench.training import overrides, shared_loss
from models.jin import WINDOW, EstimatedSlots, Jin


@dataclass(frozen=True)
class Options:
    width: Annotated[float, Range(0.03125, 4.0)] = 1.0  # x the published features, growth, upsampling channels
    deblur_blocks: Annotated[int, Range(1, 64)] = 20  # DeblurNet's residual dense blocks (published 20)
    interp_blocks: Annotated[int, Range(1, 64)] = 6  # InterpNet's (published 6)
    # inputs per training window, over train_data.window (published 4: DeblurNet's)
    window: Annotated[int, Range(2, WINDOW)] = overrides("train_data.window", WINDOW)


def build(params: Params, options: Options) -> Jin:
    model = Jin(options.width, options.deblur_blocks, options.interp_blocks)
    model.config = options  # recorded in the checkpoint by the train stage
    return model


def loss(params: Params, options: Options) -> nn.Module:
    return EstimatedSlots(shared_loss(params))


register(Method(
    name="jin",
    tasks=TASKS,
    trains=True,
    build=build,
    options=Options,
    loss=loss,
    description="Jin et al. (CVPR 2019): DeblurNet keyframes from 4 inputs, InterpNet between them, trained "
                "jointly; published size 10.81M parameters",
))
