"""ALANet with self-attention only (paper Table 3 ablation)."""

from dataclasses import asdict

from alabench.config import ALANetOptions
from alabench.methods import TASKS, Method, method_options, register
from models.alanet import ALANet, ALANetConfig

register(Method(
    name="alanet_self",
    tasks=TASKS,
    trains=True,
    options=ALANetOptions,
    build=lambda params: ALANet(ALANetConfig(window=params.train_data.window, attention="self",
                                             **asdict(method_options(params, "alanet_self", ALANetOptions)))),
    description="ALANet with self-attention only (paper Table 3 ablation)",
))
