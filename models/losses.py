"""Training losses. Paper eq. 8, shared by every method: L = L1 reconstruction + λ · perceptual
(VGG16 features, Johnson et al. [11]); and the published losses of the re-implemented baselines.

Every loss maps (outputs, targets[, extras]) -> {"total": ..., parts}; outputs and targets are
[deblur (B, W, 3, H, W), interp (B, W-1, 3, H, W)] in [0, 1]."""

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


def charbonnier(output: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    """mean(sqrt(d² + ε²) − ε): L1 for errors well above ε, quadratic below it, 0 at 0; ε = 0 is L1.

    Why not plain L1 under random blur: on a sharp input the best correction is exactly zero, and L1
    pulls any correction back with full force however small it is, so a residual head that cannot yet
    tell sharp inputs from blurry ones stays at its zero start (docs/training.md, "Mixed blur"). Below ε
    the pull fades with the error, so a small correction survives long enough to be learnt."""
    if eps == 0:
        return F.l1_loss(output, target)
    return ((output - target).square() + eps * eps).sqrt().mean() - eps


class ReconstructionLoss(nn.Module):
    """Pixel loss (L1, or Charbonnier with ``eps`` > 0) over every output frame plus λ · perceptual;
    returns the total and its parts (the pixel part under the name ``l1``)."""

    def __init__(self, perceptual: PerceptualLoss | None, weight: float, eps: float = 0.0) -> None:
        super().__init__()
        if weight > 0 and perceptual is None:
            raise ValueError("a perceptual weight > 0 needs the VGG16 features")
        self.perceptual, self.weight, self.eps = perceptual, weight, eps

    def forward(self, outputs: list[torch.Tensor], targets: list[torch.Tensor], **_: object) -> dict[str, torch.Tensor]:
        out = torch.cat([o.flatten(0, 1) for o in outputs])  # (N, 3, H, W): every frame of every task
        tgt = torch.cat([t.flatten(0, 1) for t in targets])
        l1 = charbonnier(out, tgt, self.eps)
        parts = {"l1": l1}
        total = l1
        if self.weight > 0 and self.perceptual is not None:
            parts["perceptual"] = self.perceptual(out, tgt)
            total = total + self.weight * parts["perceptual"]
        parts["total"] = total
        return parts


def _l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    h, w = target.shape[-2:]  # outputs made on frames padded to the network's stride
    return F.l1_loss(output[..., :h, :w].float(), target.float())


class InterpolationL1(nn.Module):
    """CAIN's published loss: L1 of the interpolated frames alone."""

    def forward(self, outputs: list[torch.Tensor], targets: list[torch.Tensor], **_: object) -> dict[str, torch.Tensor]:
        l1 = _l1(outputs[1].flatten(0, 1), targets[1].flatten(0, 1))
        return {"l1": l1, "total": l1}


class SuperSloMoLoss(nn.Module):
    """Super SloMo's published loss (Jiang et al. 2018, eq. 7-11) on the interpolated frames:
    reconstruction (L1), perceptual (VGG16 conv4_3), warping (each input warped onto the other by
    the predicted flow, and both onto the middle by the approximated flows) and smoothness (total
    variation of both flows, in pixels). Weights as in the widely used re-implementation
    (204 l_r + 102 l_w + 0.005 l_p + l_s on 0-255 images' L1 terms, i.e. the paper's 0.8 / 0.4 /
    0.005 / 1 with pixel values 0-255), written here for images in [0, 1]: every term / 255.

    ``extras`` are the model's intermediates of its last forward (``SuperSloMo.extras``).
    """

    def __init__(self, perceptual: PerceptualLoss | None) -> None:
        super().__init__()
        self.perceptual = perceptual

    def forward(self, outputs: list[torch.Tensor], targets: list[torch.Tensor],
                extras: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        if extras is None:
            raise ValueError("SuperSloMoLoss needs the model's intermediates (SuperSloMo.extras of a training forward)")
        middle, target = outputs[1].flatten(0, 1), targets[1].flatten(0, 1)
        i0, i1 = extras["i0"], extras["i1"]
        parts = {"reconstruction": _l1(middle, target),
                 "warping": (_l1(extras["i1_to_0"], i0) + _l1(extras["i0_to_1"], i1)
                             + _l1(extras["i0_to_t"], target) + _l1(extras["i1_to_t"], target)),
                 "smoothness": sum(((f[..., 1:] - f[..., :-1]).abs().mean() + (f[..., 1:, :] - f[..., :-1, :]).abs().mean())
                                   for f in (extras["f01"].float(), extras["f10"].float()))}
        total = 0.8 * parts["reconstruction"] + 0.4 * parts["warping"] + parts["smoothness"] / 255
        if self.perceptual is not None:
            h, w = target.shape[-2:]
            parts["perceptual"] = self.perceptual(middle[..., :h, :w].float(), target)
            total = total + 0.005 / 255 * parts["perceptual"]
        parts["total"] = total
        return parts
