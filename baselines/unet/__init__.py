"""ALANet's encoder and generator with the latent attention removed: the "no attention" reference.

Everything but M is ALANet's (the same ``ALANetOptions``: width, generators, residual; same skips,
padding and zero-initialised residual output): the deblur latent of frame i is its own encoder
latent x_i, the interpolation latent between i and i+1 is (x_i + x_{i+1}) / 2. Comparing it with
`alanet`, `alanet_self` and `alanet_cross` isolates what the attention adds (paper Table 3). Its one
knock-out (``ALANet.knockouts``) is ``latent_zeroed``: without attention there are no gates or terms to
switch off, but whether the decoder uses the bottleneck latent at all is the same question.
"""

from dataclasses import asdict

import torch
from torch import nn

from alabench.config import Params
from alabench.methods import TASKS, Method, register
from models.alanet import ALANet, ALANetConfig, ALANetOptions


class PassThrough(nn.Module):
    """Stands in for ALANet's LatentAttention: latents straight through, interpolation from their mean."""

    def deblur(self, latents: list[torch.Tensor], i: int) -> torch.Tensor:
        return latents[i]

    def interp(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        return (x_a + x_b) / 2


class PlainUNet(ALANet):
    def __init__(self, config: ALANetConfig) -> None:
        super().__init__(config)  # attention "none": ALANet builds no channel attention at all
        self.attention = PassThrough()  # type: ignore[assignment]


def build(params: Params, options: ALANetOptions) -> PlainUNet:
    return PlainUNet(ALANetConfig(window=params.train_data.window, attention="none",  # type: ignore[arg-type]
                                  **asdict(options)))


register(Method(
    name="unet",
    tasks=TASKS,
    trains=True,
    build=build,
    options=ALANetOptions,
    description="ALANet without the latent attention: latents passed through, interpolation from their mean",
))
