"""The adaptive warping layer (DAIN's FilterInterpolation, MEMC-Net's adaptive warping) in plain PyTorch.

It warps a frame by a flow with a learned 4x4 kernel per pixel, without the authors' CUDA extension,
on any device, differentiable in the frame, the flow and the kernels.
"""

from __future__ import annotations

import torch


def adaptive_warp(image: torch.Tensor, flow: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) image, (B, 2, H, W) flow (x then y, pixels), (B, 16, H, W) kernels -> (B, C, H, W).

    For each output pixel p = (x, y), with q = p + flow(p), (x₀, y₀) = (⌊qx⌋, ⌊qy⌋), α = qx - x₀,
    β = qy - y₀, bilinear weights u = (1-α, 1-α, α, α) and v = (1-β, 1-β, β, β):

        out(p) = Σ_{j,i=0..3} v_j · u_i · filters[4j + i](p) · image(clamp(y₀ - 1 + j), clamp(x₀ - 1 + i))

    i.e. the 4x4 patch around q is split into four 2x2 quadrants, each weighted by the bilinear
    weight of its nearest corner; indices are clamped to the image (replicate border). Where q
    leaves [0, W-1] x [0, H-1], or |flow_x| >= W/2, or |flow_y| >= H/2, out(p) = image(p) (copied;
    the kernel's comment says zeros, its code copies). Follows DAIN
    ``my_package/FilterInterpolation/filterinterpolation_cuda_kernel.cu``
    (``FilterInterpolationLayer_gpu_forward_kernelfunc``: TL, TR, BL, BR), identical to MEMC-Net
    ``my_package/src/my_lib_kernel.cu`` and ``my_lib.c`` (``FilterInterpolationLayer_*_forward``).
    Gradients are autograd's; w.r.t. the flow they come through α and β only, as in the kernels.
    One difference: a copied pixel passes its gradient on to image(p); the kernels' backward drops it.
    A Python loop over the 16 taps only, each a whole-image gather.
    """
    b, c, h, w = image.shape
    if flow.shape != (b, 2, h, w) or filters.shape != (b, 16, h, w):
        raise ValueError(f"adaptive_warp: expected flow (B, 2, H, W) and filters (B, 16, H, W) for an image of "
                         f"{tuple(image.shape)}, got {tuple(flow.shape)} and {tuple(filters.shape)}")
    ys = torch.arange(h, device=image.device, dtype=image.dtype)[:, None]
    xs = torch.arange(w, device=image.device, dtype=image.dtype)
    qx, qy = xs + flow[:, 0], ys + flow[:, 1]
    valid = ((qx >= 0) & (qy >= 0) & (qx <= w - 1) & (qy <= h - 1)
             & (flow[:, 0].abs() < w / 2) & (flow[:, 1].abs() < h / 2))
    x0, y0 = qx.detach().clamp(0, w - 1).floor(), qy.detach().clamp(0, h - 1).floor()
    alpha, beta = qx - x0, qy - y0
    wx, wy = (1 - alpha, 1 - alpha, alpha, alpha), (1 - beta, 1 - beta, beta, beta)
    cols = [(x0.long() - 1 + i).clamp(0, w - 1) for i in range(4)]
    rows = [(y0.long() - 1 + j).clamp(0, h - 1) for j in range(4)]
    flat = image.flatten(2)
    out = torch.zeros_like(image)
    for j in range(4):
        for i in range(4):
            index = (rows[j] * w + cols[i]).flatten(1)[:, None].expand(b, c, -1)
            sample = flat.gather(2, index).view(b, c, h, w)
            out = out + (filters[:, 4 * j + i] * wy[j] * wx[i])[:, None] * sample
    return torch.where(valid[:, None], out, image)
