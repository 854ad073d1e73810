"""ALANet with cross-attention only (paper Table 3 ablation)."""

from dataclasses import asdict

from alabench.methods import TASKS, Method, register
from models.alanet import ALANet, ALANetConfig

register(Method(
    name="alanet_cross",
    tasks=TASKS,
    trains=True,
    build=lambda params: ALANet(ALANetConfig(window=params.train_data.window, attention="cross",
                                             **asdict(params.alanet))),
    description="ALANet with cross-attention only (paper Table 3 ablation)",
))
