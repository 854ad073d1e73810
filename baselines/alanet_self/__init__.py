"""ALANet with self-attention only (paper Table 3 ablation)."""

from dataclasses import asdict

from alabench.methods import TASKS, Method, register
from models.alanet import ALANet, ALANetConfig, ALANetOptions

register(Method(
    name="alanet_self",
    tasks=TASKS,
    trains=True,
    options=ALANetOptions,
    build=lambda params, options: ALANet(ALANetConfig(window=params.train_data.window, attention="self",
                                                      **asdict(options))),
    description="ALANet with self-attention only (paper Table 3 ablation)",
))
