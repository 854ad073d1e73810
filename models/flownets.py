"""FlowNetS (Dosovitskiy et al., ICCV 2015), MEMC-Net's flow network, in plain PyTorch.

The two frames stacked (6 channels), a stride-2 encoder to 1/64 resolution (7x7, 5x5, 5x5, then
3x3 convs; 64-128-256-256-512-512-512-512-1024-1024 channels, LeakyReLU 0.1), and a decoder that at
each level concatenates the encoder's features, the deconvolved features and the upsampled flow of
the level below. Returns the 1/4-resolution flow in units of 1/20 pixel (MEMC-Net multiplies by 20).

Follows MEMC-Net ``networks/FlowNetS/FlowNetS.py`` (``FlowNetS(batchNorm=False)``, as ``flownets()``
builds it, l. 33-135 at 82b6e25); ``width`` scales every channel count (1.0: the published 38.7M
parameters).
"""

from __future__ import annotations

import torch
from torch import nn

from models.pwcnet import scaled

ENCODER = ((64, 7, 2), (128, 5, 2), (256, 5, 2), (256, 3, 1), (512, 3, 2), (512, 3, 1), (512, 3, 2), (512, 3, 1),
           (1024, 3, 2), (1024, 3, 1))  # (channels, kernel, stride): conv1, conv2, conv3, conv3_1 ... conv6_1
DECODER = (512, 256, 128, 64)  # deconv5 .. deconv2
STRIDE = 64


class FlowNetS(nn.Module):
    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        layers, inputs = [], 6
        for channels, kernel, stride in ENCODER:
            layers.append(nn.Sequential(nn.Conv2d(inputs, scaled(channels, width), kernel, stride, kernel // 2),
                                        nn.LeakyReLU(0.1)))
            inputs = scaled(channels, width)
        self.encoder = nn.ModuleList(layers)
        skips = [scaled(ENCODER[i][0], width) for i in (7, 5, 3, 1)]  # conv5_1, conv4_1, conv3_1, conv2
        self.predict = nn.ModuleList([nn.Conv2d(inputs, 2, 3, padding=1, bias=False)])
        self.deconvs, self.up_flows = nn.ModuleList(), nn.ModuleList()
        for channels, skip in zip(DECODER, skips):
            self.deconvs.append(nn.Sequential(nn.ConvTranspose2d(inputs, scaled(channels, width), 4, 2, 1),
                                              nn.LeakyReLU(0.1)))
            self.up_flows.append(nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=False))
            inputs = skip + scaled(channels, width) + 2
            self.predict.append(nn.Conv2d(inputs, 2, 3, padding=1, bias=False))
        for m in self.modules():  # the authors' (self-described hacky) initialisation
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0, 0.02 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) x2, H and W multiples of 64 -> (N, 2, H/4, W/4) flow first -> second, in 1/20 px."""
        x, skips = torch.cat([first, second], 1), []
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i in (1, 3, 5, 7):
                skips.append(x)
        flow = self.predict[0](x)
        for deconv, up_flow, predict in zip(self.deconvs, self.up_flows, self.predict[1:]):
            x = torch.cat([skips.pop(), deconv(x), up_flow(flow)], 1)
            flow = predict(x)
        return flow
