"""ALANet with cross-attention only (paper Table 3 ablation)."""

from dataclasses import asdict

from alabench.methods import TASKS, Method, register
from models.alanet import ALANet, ALANetConfig, ALANetOptions

register(Method(
    name="alanet_cross",
    tasks=TASKS,
    trains=True,
    options=ALANetOptions,
    build=lambda params, options: ALANet(ALANetConfig(window=params.train_data.window, attention="cross",
                                                      **asdict(options))),
    description="ALANet with cross-attention only (paper Table 3 ablation)",
))
