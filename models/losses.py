"""Paper eq. 8: L = L1 reconstruction + λ · perceptual (VGG16 features, Johnson et al. [11])."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Index of each ReLU output in torchvision's vgg16().features.
VGG16_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class PerceptualLoss(nn.Module):
    """Mean squared distance of VGG16 activations (inputs in [0, 1], ImageNet-normalised)."""

    def __init__(self, vgg_features: nn.Sequential, layers: tuple[str, ...]) -> None:
        super().__init__()
        self.taps = sorted(VGG16_LAYERS[name] for name in layers)
        self.features = vgg_features[: self.taps[-1] + 1].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = (torch.cat([output, target]) - self.mean) / self.std
        loss = output.new_zeros(())
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out, tgt = x.chunk(2)
                loss = loss + F.mse_loss(out, tgt)
        return loss


class ReconstructionLoss(nn.Module):
    """L1 over every output frame plus λ · perceptual; returns the total and its parts."""

    def __init__(self, perceptual: PerceptualLoss | None, weight: float) -> None:
        super().__init__()
        if weight > 0 and perceptual is None:
            raise ValueError("a perceptual weight > 0 needs the VGG16 features")
        self.perceptual, self.weight = perceptual, weight

    def forward(self, outputs: list[torch.Tensor], targets: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        out = torch.cat([o.flatten(0, 1) for o in outputs])  # (N, 3, H, W): every frame of every task
        tgt = torch.cat([t.flatten(0, 1) for t in targets])
        l1 = F.l1_loss(out, tgt)
        parts = {"l1": l1}
        total = l1
        if self.weight > 0 and self.perceptual is not None:
            parts["perceptual"] = self.perceptual(out, tgt)
            total = total + self.weight * parts["perceptual"]
        parts["total"] = total
        return parts
