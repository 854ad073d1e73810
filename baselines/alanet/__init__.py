"""ALANet: self- and cross-attention on the latents (paper eq. 5 and 6)."""

from dataclasses import asdict

from alabench.methods import TASKS, Method, register
from models.alanet import ALANet, ALANetConfig, ALANetOptions

register(Method(
    name="alanet",
    tasks=TASKS,
    trains=True,
    options=ALANetOptions,
    build=lambda params, options: ALANet(ALANetConfig(window=params.train_data.window, attention="both",
                                                      **asdict(options))),
    description="ALANet: self- and cross-attention on the latents (paper eq. 5 and 6)",
))
