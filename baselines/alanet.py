"""ALANet: self- and cross-attention on the latents (paper eq. 5 and 6)."""

from dataclasses import asdict

from alabench.methods import TASKS, Method, register
from models.alanet import ALANet, ALANetConfig

register(Method(
    name="alanet",
    tasks=TASKS,
    trains=True,
    build=lambda params: ALANet(ALANetConfig(window=params.train_data.window, attention="both",
                                             **asdict(params.alanet))),
    description="ALANet: self- and cross-attention on the latents (paper eq. 5 and 6)",
))
