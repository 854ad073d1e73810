"""DAIN, "Depth-Aware Video Frame Interpolation" (Bao et al., CVPR 2019), in plain PyTorch.

For each pair (I0, I1) and t = 1/2 (DAIN ``networks/DAIN.py`` at 7c727ac, ``forward`` l. 81-195):

1. flows F0->1, F1->0 by PWC-Net (``models.pwcnet``), x20 (its unit), x t, bilinearly upsampled x4;
2. log depths D0, D1 by the MegaDepth hourglass (``models.megadepth``); the depth-aware flow
   projection (``models.flow_projection``, weights 1e-6 + 1/exp(D)) turns t·F0->1 into the flow
   from the middle frame back to frame 0 (and likewise for frame 1); holes filled only without
   gradients, as the authors' kernel does (``fillhole = not requires_grad``);
3. per-pixel 4x4 kernels for both frames from one kernel U-Net with two heads (``get_MonoNet5``,
   l. 243-290: 16-32-...-512 channels, max pooling, skips added after each upsampling);
4. contextual features: each frame, the three dense residual blocks of ``S2DF_3dense``
   (``S2D_models/S2DF.py``) and its log depth;
5. the adaptive warping layer (``models.adaptive_warp``) warps the frames and (with flows and
   kernels detached, as the authors do) the contextual features; the blend is the mean of the
   two warped frames, and a residual network (``Resblock.MultipleBasicBlock_4``: a 7x7 conv to 128
   channels, three residual blocks, a 3x3 conv to RGB) adds a correction from the warped frames,
   flows, kernels and warped features.

``width`` scales every sub-network's channels (1.0: the published 24.0M-parameter model; PWC-Net
and MegaDepth are initialised from pretrained weights there, which this repo does not have).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.adaptive_warp import adaptive_warp
from models.flow_projection import project_flow
from models.pairwise import PairwiseInterpolator
from models.megadepth import HourGlass
from models.pwcnet import PWCNet, scaled

STRIDE = 64  # PWC-Net's six levels
# The 4x4 kernel taps (4j + i) of the adaptive warp's central 2x2: with these 1 and the rest 0, the
# layer is a plain bilinear backward warp.
BILINEAR_TAPS = (5, 6, 9, 10)


def pad_to(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Replicate-pad (N, C, H, W) at the bottom and right to multiples of ``stride``."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % stride, 0, (-h) % stride), mode="replicate")


class KernelUNet(nn.Module):
    """DAIN's kernel estimator: conv-ReLU encoder with max pooling (6 -> 16 -> 32 ... 512, five pools),
    a bilinear-upsampling decoder that adds each pool's input after the matching upsampling, and two
    heads (conv-ReLU-conv) giving the 16 kernel taps for frame 0 and for frame 1."""

    PLAN = (16, 32, 64, 128, 256, 512)

    def __init__(self, width: float, taps: int = 16) -> None:
        super().__init__()
        c = [scaled(n, width) for n in self.PLAN]
        block = lambda i, o: nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.ReLU())  # noqa: E731
        self.stem = block(6, c[0])
        self.down = nn.ModuleList([block(c[i], c[i + 1]) for i in range(5)])
        self.middle = block(c[5], c[5])
        self.up = nn.ModuleList([block(c[i + 1], c[i]) for i in range(4, -1, -1)])
        self.heads = nn.ModuleList([nn.Sequential(nn.Conv2d(c[0], c[0], 3, padding=1), nn.ReLU(),
                                                  nn.Conv2d(c[0], taps, 3, padding=1)) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x, skips = self.stem(x), []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.middle(x)
        for layer in self.up:
            x = layer(F.interpolate(x, scale_factor=2, mode="bilinear") + skips.pop())
        return [head(x) for head in self.heads]


class BasicBlock(nn.Module):
    """relu(x + conv(relu(conv(x)))), bias-free 3x3 convs (ResNet's block, optionally dilated)."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class ContextNet(nn.Module):
    """S2DF_3dense: cat(x, f1, f2, f3), f1 = relu(conv7x7(x)), then blocks dilated by 4 and 8."""

    def __init__(self, width: float) -> None:
        super().__init__()
        c = scaled(64, width)
        self.stem = nn.Sequential(nn.Conv2d(3, c, 7, padding=3, bias=False), nn.ReLU())
        self.blocks = nn.ModuleList([BasicBlock(c, 4), BasicBlock(c, 8)])
        self.channels = 3 + 3 * c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = [x, self.stem(x)]
        for block in self.blocks:
            out.append(block(out[-1]))
        return torch.cat(out, 1)


class RectifyNet(nn.Sequential):
    """MultipleBasicBlock_4: a 7x7 conv and ReLU, three residual blocks, a 3x3 conv to RGB."""

    def __init__(self, inputs: int, width: float) -> None:
        c = scaled(128, width)
        super().__init__(nn.Conv2d(inputs, c, 7, padding=3), nn.ReLU(), *(BasicBlock(c) for _ in range(3)),
                         nn.Conv2d(c, 3, 3, padding=1))


class Rectified(PairwiseInterpolator):
    """DAIN's and MEMC-Net's shape: ``estimate(i0, i1)`` gives (the blend, the rectified frame); windows
    (B, W, 3, H, W) -> (the inputs, the rectified middles), as ``models.pairwise`` arranges."""

    def estimate(self, i0: torch.Tensor, i1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def middle(self, i0: torch.Tensor, i1: torch.Tensor) -> torch.Tensor:
        """The rectified frame: unbounded while training (the loss sees it whole), in [0, 1] otherwise."""
        out = self.estimate(i0, i1)[1]
        return out if self.training else out.clamp(0, 1)


class DAIN(Rectified):
    t = 0.5

    def __init__(self, width: float = 1.0, residual: bool = True) -> None:
        super().__init__()
        self.flow = PWCNet(width)
        self.depth = HourGlass(width)
        self.kernels = KernelUNet(width)
        self.context = ContextNet(width)
        features = self.context.channels + 1  # and the log depth
        self.rectify = RectifyNet(3 * 3 + 2 * 2 + 2 * 16 + 2 * features, width)
        for m in [self.kernels, self.context, self.rectify]:  # the authors' _initialize_weights
            for layer in m.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.xavier_uniform_(layer.weight)
                    if layer.bias is not None:
                        nn.init.zeros_(layer.bias)
        if residual:  # start at the blurry-input baseline: zero flows, bilinear kernels, no correction
            for head in self.kernels.heads:
                nn.init.zeros_(head[-1].weight)
                nn.init.zeros_(head[-1].bias)
                head[-1].bias.data[list(BILINEAR_TAPS)] = 1.0
            nn.init.zeros_(self.rectify[-1].weight)
            nn.init.zeros_(self.rectify[-1].bias)
            for layer in (self.flow.estimators[-1].flow, self.flow.context[-1]):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def estimate(self, i0: torch.Tensor, i1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) frames -> (the blend, the rectified frame) at t = 1/2, both (N, 3, H, W)."""
        h, w = i0.shape[-2:]
        i0, i1 = pad_to(i0, STRIDE), pad_to(i1, STRIDE)
        log_depth = self.depth(torch.cat([i0, i1]))
        weights = (1e-6 + torch.exp(-log_depth)).chunk(2)
        ctx = torch.cat([self.context(torch.cat([i0, i1])), log_depth.detach()], 1).chunk(2)
        filters = self.kernels(torch.cat([i0, i1], 1))
        # Both directions in one batch: F0->1 from (I0, I1), F1->0 from (I1, I0).
        flows = self.flow(torch.cat([i0, i1]), torch.cat([i1, i0])) * (20.0 * self.t)
        flows = F.interpolate(flows, scale_factor=4, mode="bilinear").chunk(2)
        offsets = [project_flow(f, wt, fill_holes=not f.requires_grad) for f, wt in zip(flows, weights)]
        warped = [adaptive_warp(img, off, k) for img, off, k in zip((i0, i1), offsets, filters)]
        warped_ctx = [adaptive_warp(c, off.detach(), k.detach()) for c, off, k in zip(ctx, offsets, filters)]
        blend = (warped[0] + warped[1]) / 2
        rectified = blend + self.rectify(torch.cat([blend, *warped, *offsets, *filters, *warped_ctx], 1))
        return blend[..., :h, :w], rectified[..., :h, :w]
