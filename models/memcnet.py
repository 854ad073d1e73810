"""MEMC-Net, "Motion Estimation and Motion Compensation Driven Neural Network for Video Interpolation
and Enhancement" (Bao et al., TPAMI 2019), in plain PyTorch.

For each pair (I0, I1) and t = 1/2 (MEMC-Net ``networks/MEMC_Net.py`` at 82b6e25, ``forward`` l. 69-147):

1. flows F0->1, F1->0 by FlowNetS (``models.flownets``), x20 (its unit) / 2, bilinearly upsampled
   x4 (every bilinear up-sampling here aligns corners, as the authors' pinned PyTorch 0.2 did), and
   projected (``models.flow_projection``, no depth weighting; the released kernel's fill, whose
   downward search never runs, only without gradients) into flows from the middle frame;
2. one kernel U-Net (``get_MonoNet5``: two convs per level, BatchNorm before each max pooling and
   each bilinear upsampling, 32-...-512 channels, skips added after each upsampling) with two heads
   giving 4x4 kernels for each frame, and a second such U-Net giving occlusion maps 1/2 + o0, 1/2 + o1;
3. the adaptive warping layer (``models.adaptive_warp``) on both frames, blended by the occlusion
   maps: o0 · warp(I0) + o1 · warp(I1);
4. a plain 8-layer CNN (``get_RectifyNet2``: 3x3 convs, 64 channels) adds a correction from the
   blend, flows, kernels and occlusion maps.

``width`` scales every sub-network's channels (1.0: the published 67.3M-parameter model; FlowNetS is
initialised from pretrained weights there, which this repo does not have).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.adaptive_warp import adaptive_warp
from models.dain import BILINEAR_TAPS, Rectified, pad_to
from models.flow_projection import project_flow
from models.flownets import STRIDE, FlowNetS
from models.pwcnet import scaled


def conv_relu(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, padding=1), nn.ReLU())


class KernelUNet(nn.Module):
    """MEMC-Net's MonoNet5: levels of conv-ReLU, conv-ReLU-BatchNorm, max pool (6 -> 32 ... 512, five
    pools), two conv-ReLU at the bottom, then per level conv-ReLU-BatchNorm, bilinear x2, + the
    matching pool's input, conv-ReLU to fewer channels; ``heads`` conv-ReLU-conv heads at 16 channels."""

    PLAN = (32, 64, 128, 256, 512)

    def __init__(self, width: float, outputs: int, heads: int = 2) -> None:
        super().__init__()
        c = [scaled(n, width) for n in self.PLAN]
        bn = lambda i, o: nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(o))  # noqa: E731
        self.stem = conv_relu(6, c[0])
        self.down = nn.ModuleList([nn.Sequential(conv_relu(c[max(i - 1, 0)], c[i]), bn(c[i], c[i]))
                                   for i in range(5)])
        self.middle = nn.Sequential(conv_relu(c[4], c[4]), conv_relu(c[4], c[4]))
        ends = [c[4], c[3], c[2], c[1], c[0]]  # each upsampling level's channels, then the next conv's output
        self.up = nn.ModuleList([bn(ch, ch) for ch in ends])
        self.reduce = nn.ModuleList([conv_relu(ch, nxt) for ch, nxt in zip(ends, ends[1:] + [scaled(16, width)])])
        head = scaled(16, width)
        self.heads = nn.ModuleList([nn.Sequential(nn.Conv2d(head, head, 3, padding=1), nn.ReLU(),
                                                  nn.Conv2d(head, outputs, 3, padding=1)) for _ in range(heads)])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x, skips = self.stem(x), []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.middle(x)
        for up, reduce in zip(self.up, self.reduce):
            x = reduce(F.interpolate(up(x), scale_factor=2, mode="bilinear", align_corners=True) + skips.pop())
        return [head(x) for head in self.heads]


class MEMCNet(Rectified):
    def __init__(self, width: float = 1.0, residual: bool = True) -> None:
        super().__init__()
        self.flow = FlowNetS(width)
        self.kernels = KernelUNet(width, 16)
        self.occlusion = KernelUNet(width, 1)
        c = scaled(64, width)
        self.rectify = nn.Sequential(conv_relu(3 + 2 * 2 + 2 * 16 + 2, c), *(conv_relu(c, c) for _ in range(6)),
                                     nn.Conv2d(c, 3, 3, padding=1))
        for m in [self.kernels, self.occlusion, self.rectify]:  # the authors' _initialize_weights
            for layer in m.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.kaiming_uniform_(layer.weight, a=0, mode="fan_in")
                    nn.init.zeros_(layer.bias)
        if residual:  # the blurry-input baseline: zero flows, bilinear kernels, even occlusion, no correction
            for layer in [*(h[-1] for h in self.kernels.heads), *(h[-1] for h in self.occlusion.heads),
                          self.rectify[-1], self.flow.predict[-1]]:
                nn.init.zeros_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
            for head in self.kernels.heads:
                head[-1].bias.data[list(BILINEAR_TAPS)] = 1.0

    def estimate(self, i0: torch.Tensor, i1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) frames -> (the blend, the rectified frame) at t = 1/2, both (N, 3, H, W)."""
        h, w = i0.shape[-2:]
        i0, i1 = pad_to(i0, STRIDE), pad_to(i1, STRIDE)
        flows = self.flow(torch.cat([i0, i1]), torch.cat([i1, i0])) * (20.0 / 2)  # both directions, one batch
        flows = F.interpolate(flows, scale_factor=4, mode="bilinear", align_corners=True).chunk(2)
        offsets = [project_flow(f, fill_holes=not f.requires_grad, search_down=False) for f in flows]
        pair = torch.cat([i0, i1], 1)
        filters = self.kernels(pair)
        occlusion = [0.5 + o for o in self.occlusion(pair)]
        warped = [adaptive_warp(img, off, k) for img, off, k in zip((i0, i1), offsets, filters)]
        blend = occlusion[0] * warped[0] + occlusion[1] * warped[1]
        rectified = blend + self.rectify(torch.cat([blend, *offsets, *filters, *occlusion], 1))
        return blend[..., :h, :w], rectified[..., :h, :w]
