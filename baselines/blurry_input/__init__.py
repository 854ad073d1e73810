"""The paper's "Blurry Inputs" row: deblur = the input itself, interpolation = mean of the two neighbours.

The floor every method must beat. Under the `mixed` protocol its sharp inputs equal their ground
truth, so those frames score PSNR = inf (capped in every average, see docs/evaluation.md).
"""

import torch
from torch import nn

from alabench.methods import TASKS, Method, register


class BlurryInput(nn.Module):
    window = 2  # any W >= 2 works: each pair is averaged on its own

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return frames, (frames[:, :-1] + frames[:, 1:]) / 2


register(Method(
    name="blurry_input",
    tasks=TASKS,
    trains=False,
    build=lambda params, options: BlurryInput(),
    description="the inputs as they are; interpolation = mean of the two neighbours (Table 2, 'Blurry Inputs')",
))
