"""ALANet and its two ablations (paper Table 3): one model, one `attention` switch."""

from __future__ import annotations

from alabench.config import Params
from alabench.methods import TASKS, Method, register
from models.alanet import ALANet, ALANetConfig


def _builder(attention: str):  # type: ignore[no-untyped-def]
    def build(params: Params) -> ALANet:
        p = params.alanet
        return ALANet(ALANetConfig(window=params.train_data.window, width=p.width, attention=attention,  # type: ignore[arg-type]
                                   reduction=p.reduction, generators=p.generators, residual=p.residual))
    return build


for _name, _attention, _what in (("alanet", "both", "self + cross latent attention (ALANET)"),
                                 ("alanet_self", "self", "self-attention only (Table 3 ablation)"),
                                 ("alanet_cross", "cross", "cross-attention only (Table 3 ablation)")):
    register(Method(_name, TASKS, trains=True, build=_builder(_attention), description=_what))
