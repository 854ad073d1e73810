"""ALANet: self- and cross-attention on the latents (paper eq. 5 and 6)."""

from dataclasses import asdict

from alabench.config import ALANetOptions
from alabench.methods import TASKS, Method, method_options, register
from models.alanet import ALANet, ALANetConfig

register(Method(
    name="alanet",
    tasks=TASKS,
    trains=True,
    options=ALANetOptions,
    build=lambda params: ALANet(ALANetConfig(window=params.train_data.window, attention="both",
                                             **asdict(method_options(params, "alanet", ALANetOptions)))),
    description="ALANet: self- and cross-attention on the latents (paper eq. 5 and 6)",
))
