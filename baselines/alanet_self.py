"""ALANet with self-attention only (paper Table 3 ablation)."""

from dataclasses import asdict

from alabench.methods import TASKS, Method, register
from models.alanet import ALANet, ALANetConfig

register(Method(
    name="alanet_self",
    tasks=TASKS,
    trains=True,
    build=lambda params: ALANet(ALANetConfig(window=params.train_data.window, attention="self",
                                             **asdict(params.alanet))),
    description="ALANet with self-attention only (paper Table 3 ablation)",
))
