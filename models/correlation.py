"""PWC-Net's correlation (cost volume) in plain PyTorch, so DAIN's flow network runs without its CUDA extension."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def correlation(first: torch.Tensor, second: torch.Tensor, max_displacement: int = 4) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B, (2d+1)², H, W): the FlowNetC correlation as PWC-Net configures it.

    With d = ``max_displacement`` (PWC-Net: 4), for every displacement (dy, dx) in [-d, d]² and pixel (y, x):

        out[b, (dy + d)·(2d + 1) + (dx + d), y, x] = 1/C · Σ_c first[b, c, y, x] · second[b, c, y + dy, x + dx]

    i.e. kernel size 1, strides 1 and 1, normalised by the number of channels (the kernel's
    ``nelems = kernel_size² · C``), channels ordered row-major in (dy, dx). Borders: ``second`` is
    zero outside the image (padding d), so a displacement leaving the image contributes 0; the
    output keeps the input's H x W. Follows DAIN's ``PWCNet/correlation_package_pytorch1_0/
    correlation_cuda_kernel.cu`` (``correlation_forward``) as called by ``PWCNet/PWCNet.py``
    (``Correlation(pad_size=md, kernel_size=1, max_displacement=md, stride1=1, stride2=1)``).
    A Python loop over the (2d+1)² displacements only, each a whole-image product.
    """
    if first.shape != second.shape or first.dim() != 4:
        raise ValueError(f"correlation: expected two (B, C, H, W) tensors of one shape, got "
                         f"{tuple(first.shape)} and {tuple(second.shape)}")
    d, (h, w) = max_displacement, first.shape[-2:]
    padded = F.pad(second, (d, d, d, d))
    return torch.stack([(first * padded[..., dy:dy + h, dx:dx + w]).mean(1)
                        for dy in range(2 * d + 1) for dx in range(2 * d + 1)], 1)
