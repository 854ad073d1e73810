"""The AlexNet / VGG16 ``features`` trunks and the LPIPS v0.1 metric on them, built from torch alone.

They are torchvision's ``<name>().features`` layer for layer (same indices, shapes, strides and
paddings: tests/test_weights.py builds both and compares them) and ``lpips.LPIPS(version="0.1")`` op
for op, with the linear heads the lpips package ships (the same numbers: tests/test_metrics.py runs
both on real frames). Why not import them: torchvision (which lpips imports) imports
``torch._dynamo`` through ``torchvision.ops``, 1.1 s at the start of every evaluate stage, longer than
a tiny evaluation's work. The weights come from :mod:`alabench.weights`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from alabench.sdist import WeightsError

Backbone = Literal["alexnet", "vgg16"]

# torchvision's layouts: a conv as (out channels, kernel, stride, padding), each followed by ReLU;
# "M<k>,<s>" a max pool of kernel k, stride s.
_LAYOUTS: dict[str, list[tuple[int, int, int, int] | str]] = {
    "alexnet": [(64, 11, 4, 2), "M3,2", (192, 5, 1, 2), "M3,2", (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1),
                "M3,2"],
    "vgg16": [(64, 3, 1, 1), (64, 3, 1, 1), "M2,2", (128, 3, 1, 1), (128, 3, 1, 1), "M2,2",
              (256, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1), "M2,2", (512, 3, 1, 1), (512, 3, 1, 1),
              (512, 3, 1, 1), "M2,2", (512, 3, 1, 1), (512, 3, 1, 1), (512, 3, 1, 1), "M2,2"],
}
# LPIPS reads each trunk after these ReLUs (lpips.pretrained_networks' slice ends, minus one).
LPIPS_TAPS = {"alexnet": (1, 4, 7, 9, 11), "vgg16": (3, 8, 15, 22, 29)}
LPIPS_NET = {"alex": "alexnet", "vgg": "vgg16"}  # lpips' names of the trunks


def features(name: Backbone) -> nn.Sequential:
    """An untrained ``torchvision.models.<name>().features`` (build it under ``torch.device("meta")``
    to skip the random initialisation when every weight is loaded next)."""
    layers: list[nn.Module] = []
    channels = 3
    for layer in _LAYOUTS[name]:
        if isinstance(layer, str):
            kernel, stride = map(int, layer[1:].split(","))
            layers.append(nn.MaxPool2d(kernel_size=kernel, stride=stride))
        else:
            out, kernel, stride, padding = layer
            layers += [nn.Conv2d(channels, out, kernel, stride=stride, padding=padding), nn.ReLU(inplace=True)]
            channels = out
    return nn.Sequential(*layers)


def lpips_heads_file(net: Literal["alex", "vgg"]) -> Path:
    """The v0.1 linear heads the lpips package ships, found without importing it (that imports torchvision)."""
    spec = importlib.util.find_spec("lpips")
    path = Path(spec.submodule_search_locations[0]) / "weights" / "v0.1" / f"{net}.pth" if (
        spec and spec.submodule_search_locations) else None
    if path is None or not path.is_file():
        raise WeightsError(f"{path or 'the lpips package'}: not found, and LPIPS needs the {net} heads the lpips "
                           "package ships: run `make venv` (it installs requirements.lock's lpips)")
    return path


class LPIPS(nn.Module):
    """Learned perceptual distance (Zhang et al. 2018), v0.1: inputs (B, 3, H, W) in [-1, 1], output
    (B, 1, 1, 1); lower is closer. ``trunk`` holds its genuine ImageNet weights already."""

    def __init__(self, net: Literal["alex", "vgg"], trunk: nn.Sequential) -> None:
        super().__init__()
        self.taps = LPIPS_TAPS[LPIPS_NET[net]]
        self.trunk = trunk[: self.taps[-1] + 1]
        self.register_buffer("shift", torch.tensor([-.030, -.088, -.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([.458, .448, .450])[None, :, None, None])
        self.heads = nn.ModuleList(nn.Conv2d(self.trunk[tap - 1].out_channels, 1, 1, bias=False) for tap in self.taps)
        heads = torch.load(lpips_heads_file(net), map_location="cpu", weights_only=True)
        self.heads.load_state_dict({f"{k}.weight": heads[f"lin{k}.model.1.weight"] for k in range(len(self.taps))})

    def tapped(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each tapped activation, unit length along channels (lpips.normalize_tensor)."""
        out = []
        x = (x - self.shift) / self.scale
        for i, layer in enumerate(self.trunk):
            x = layer(x)
            if i in self.taps:
                out.append(x / (torch.sqrt(torch.sum(x**2, dim=1, keepdim=True)) + 1e-10))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total: torch.Tensor | int = 0
        for head, a, b in zip(self.heads, self.tapped(x), self.tapped(y)):
            total = total + head((a - b) ** 2).mean([2, 3], keepdim=True)
        return total  # type: ignore[return-value]
