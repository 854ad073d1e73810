"""Flow projection (MEMC-Net's FlowProjection, DAIN's DepthFlowProjection) in plain PyTorch.

It turns a flow from frame 0, already scaled to the intermediate time t, into the flow from time t
back to frame 0, without the authors' CUDA extensions, on any device, differentiable.
"""

from __future__ import annotations

import torch


def project_flow(flow: torch.Tensor, weight: torch.Tensor | None = None, fill_holes: bool = False,
                 search_down: bool = True) -> torch.Tensor:
    """(B, 2, H, W) flow t·F₀→₁ (x, y; pixels), optional (B, 1, H, W) weight > 0 -> (B, 2, H, W) flow t -> 0.

    Every source pixel p = (x, y) whose target q = p + flow(p) lies in [0, W-1] x [0, H-1] (others
    are dropped) splats, with its weight w(p) (1 without ``weight``; DAIN passes the inverse depth
    1e-6 + 1/depth, so nearer objects win), onto the four pixels N(p) = {⌊qx⌋, min(⌊qx⌋+1, W-1)} x
    {⌊qy⌋, min(⌊qy⌋+1, H-1)} — each with the same full weight, no bilinear split; at the last
    column or row the two neighbours coincide and count twice. Then, per pixel z,

        count(z) = Σ_{p: z ∈ N(p)} w(p),   out(z) = -Σ_{p: z ∈ N(p)} w(p)·flow(p) / count(z)  if count(z) > 0.

    Holes (count(z) <= 0) are 0, or with ``fill_holes`` (the authors fill only when no gradient is
    needed: ``fillhole = not requires_grad``) the plain mean of out() at the nearest non-hole pixel
    to the left, right, above and below z (those that exist); a hole with none stays 0.
    ``search_down=False`` reproduces MEMC-Net's released kernel, whose downward search never runs
    (``while(down_temp = 0.0f && …)``, an assignment). The caller scales the flow by t first, as
    DAIN's ``forward_flownets`` and MEMC-Net's ``forward`` do.

    Follows DAIN ``my_package/DepthFlowProjection/depthflowprojection_cuda_kernel.cu``
    (``DepthFlowProjection_gpu_forward_kernelfunc``, ``…Averaging…``, ``DepthFlowFillhole_kernelfunc``)
    and MEMC-Net ``my_package/src/my_lib_kernel.cu`` (``FlowProjection_gpu_forward_kernelfunc``,
    ``FlowFillhole_kernelfunc``). Gradients are autograd's: exact w.r.t. the splatted values and
    the weights (the target positions are piecewise constant in the flow, so they carry none). The
    authors' backward differs in two ways: it ignores the fill (used only without gradients there),
    and its weight gradient uses (flow - out) where d out / d w(p) = -(flow(p) + out) / count, a sign
    error on out, since out is the *negated* mean (DAIN ``depthflowprojection_cuda_kernel.cu`` l. 314).
    """
    if flow.dim() != 4 or flow.shape[1] != 2 or (weight is not None and weight.shape != flow[:, :1].shape):
        raise ValueError(f"project_flow: expected a (B, 2, H, W) flow and a (B, 1, H, W) weight, got "
                         f"{tuple(flow.shape)} and {None if weight is None else tuple(weight.shape)}")
    b, _, h, w = flow.shape
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype)[:, None]
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype)
    qx, qy = xs + flow[:, 0], ys + flow[:, 1]
    inside = (qx >= 0) & (qy >= 0) & (qx <= w - 1) & (qy <= h - 1)
    left, top = qx.detach().clamp(0, w - 1).floor().long(), qy.detach().clamp(0, h - 1).floor().long()
    right, bottom = (left + 1).clamp(max=w - 1), (top + 1).clamp(max=h - 1)
    splat = inside.to(flow.dtype) if weight is None else inside * weight[:, 0]
    targets = torch.stack([top * w + left, top * w + right, bottom * w + left, bottom * w + right], 1).flatten(1)
    count = flow.new_zeros(b, h * w).scatter_add(1, targets, splat.flatten(1).repeat(1, 4))
    total = flow.new_zeros(b, 2, h * w).scatter_add(2, targets[:, None].expand(b, 2, -1),
                                                    (-flow * splat[:, None]).flatten(2).repeat(1, 1, 4))
    count, total = count.view(b, 1, h, w), total.view(b, 2, h, w)
    reached = count > 0
    out = torch.where(reached, total / torch.where(reached, count, torch.ones_like(count)), torch.zeros_like(total))
    return _fill_holes(out, count, search_down) if fill_holes else out


def _fill_holes(out: torch.Tensor, count: torch.Tensor, search_down: bool) -> torch.Tensor:
    """The authors' fill: each hole takes the mean of the nearest non-hole pixels in up to four directions."""
    total, used = torch.zeros_like(out), torch.zeros_like(count)
    directions = [(-1, False), (-1, True), (-2, False)] + ([(-2, True)] if search_down else [])
    for dim, after in directions:
        index = _nearest(count != 0, dim, after)  # the kernel's search stops at the first count != 0
        safe = index.clamp(min=0)
        usable = (index >= 0) & (count.gather(dim, safe) > 0)
        total = total + usable * out.gather(dim, safe.expand_as(out))
        used = used + usable
    hole = (count <= 0) & (used > 0)
    return torch.where(hole, total / used.clamp(min=1), out)


def _nearest(found: torch.Tensor, dim: int, after: bool) -> torch.Tensor:
    """Index along ``dim`` of the nearest ``found`` entry strictly before (or after) each entry; -1 if none."""
    if after:
        n = found.shape[dim]
        flipped = _nearest(found.flip(dim), dim, False)
        return torch.where(flipped >= 0, n - 1 - flipped, flipped).flip(dim)
    shape = [1] * found.dim()
    shape[dim] = found.shape[dim]
    position = torch.arange(found.shape[dim], device=found.device).view(shape)
    last = torch.where(found, position, -1).cummax(dim).values  # nearest found at or before
    return torch.cat([torch.full_like(last.narrow(dim, 0, 1), -1), last.narrow(dim, 0, last.shape[dim] - 1)], dim)
