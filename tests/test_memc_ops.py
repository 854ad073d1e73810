"""DAIN's and MEMC-Net's custom operations in plain PyTorch, each against a slow loop-by-loop reference.

Each reference below is written pixel by pixel from the operation's definition, the way the
authors' CUDA/C kernels state it (their loops, their borders, their hole filling), on tiny random
tensors that include flows leaving the image and targets nobody reaches. Gradients are checked by
finite differences in float64 (`torch.autograd.gradcheck`).
"""

from __future__ import annotations

import pytest
import torch

from models.adaptive_warp import adaptive_warp
from models.correlation import correlation
from models.flow_projection import project_flow


def away_from_integers(shape: tuple[int, ...], reach: int, generator: torch.Generator,
                       exact: float = 0.0) -> torch.Tensor:
    """Flows k + f, k in [-reach, reach], f in [0.1, 0.9] (or 0 with probability ``exact``): float32 and
    float64 agree on every floor, and gradcheck's steps never cross a rounding or border boundary."""
    whole = torch.randint(-reach, reach + 1, shape, generator=generator).double()
    frac = 0.1 + 0.8 * torch.rand(shape, generator=generator, dtype=torch.float64)
    frac = torch.where(torch.rand(shape, generator=generator) < exact, 0.0, frac)
    return (whole + frac).float().double()  # representable in float32


# -- correlation ---------------------------------------------------------------------------------------


def correlation_reference(first: torch.Tensor, second: torch.Tensor, d: int) -> torch.Tensor:
    n_batch, channels, h, w = first.shape
    a, b = first.tolist(), second.tolist()
    out = torch.zeros(n_batch, (2 * d + 1) ** 2, h, w, dtype=torch.float64)
    for n in range(n_batch):
        for y in range(h):
            for x in range(w):
                for dy in range(-d, d + 1):
                    for dx in range(-d, d + 1):
                        total = 0.0
                        if 0 <= y + dy < h and 0 <= x + dx < w:  # zero padding outside
                            for c in range(channels):
                                total += a[n][c][y][x] * b[n][c][y + dy][x + dx]
                        out[n, (dy + d) * (2 * d + 1) + (dx + d), y, x] = total / channels
    return out


@pytest.mark.parametrize("d", [1, 4])
def test_correlation_matches_the_loop_reference(d):
    g = torch.Generator().manual_seed(d)
    first, second = torch.randn(2, 2, 3, 5, 6, generator=g)
    got = correlation(first, second, max_displacement=d)
    assert got.shape == (2, (2 * d + 1) ** 2, 5, 6)
    torch.testing.assert_close(got.double(), correlation_reference(first.double(), second.double(), d),
                               atol=1e-5, rtol=0)


def test_mismatched_shapes_are_refused_not_broadcast():
    image, flow, filters = warp_inputs(0, 2, 4, 5, 1)
    with pytest.raises(ValueError, match=r"correlation: expected two \(B, C, H, W\) tensors of one shape"):
        correlation(image, image[:1])
    with pytest.raises(ValueError, match=r"adaptive_warp: expected flow \(B, 2, H, W\) and filters \(B, 16, H, W\)"):
        adaptive_warp(image, flow, filters[:, :9])
    with pytest.raises(ValueError, match=r"project_flow: expected a \(B, 2, H, W\) flow and a \(B, 1, H, W\) weight"):
        project_flow(flow, filters[:1, :1])


def test_correlation_gradients():
    g = torch.Generator().manual_seed(0)
    first, second = torch.randn(2, 1, 2, 4, 5, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: correlation(a, b, max_displacement=2), (first, second))


# -- flow projection -----------------------------------------------------------------------------------


def projection_reference(flow: torch.Tensor, weight: torch.Tensor | None, fill_holes: bool,
                         search_down: bool) -> torch.Tensor:
    n_batch, _, h, w = flow.shape
    f = flow.tolist()
    wt = weight.tolist() if weight is not None else None
    out = [[[[0.0] * w for _ in range(h)] for _ in range(2)] for _ in range(n_batch)]
    count = [[[0.0] * w for _ in range(h)] for _ in range(n_batch)]
    for n in range(n_batch):
        for y in range(h):  # splat each source pixel's flow onto the 4 pixels around its target
            for x in range(w):
                fx, fy = f[n][0][y][x], f[n][1][y][x]
                x2, y2 = x + fx, y + fy
                if not (0 <= x2 <= w - 1 and 0 <= y2 <= h - 1):
                    continue
                left, top = int(x2), int(y2)
                right, bottom = min(left + 1, w - 1), min(top + 1, h - 1)
                weight_here = wt[n][0][y][x] if wt is not None else 1.0
                for ty, tx in ((top, left), (top, right), (bottom, left), (bottom, right)):
                    out[n][0][ty][tx] -= weight_here * fx
                    out[n][1][ty][tx] -= weight_here * fy
                    count[n][ty][tx] += weight_here
        for y in range(h):
            for x in range(w):
                if count[n][y][x] > 0:
                    out[n][0][y][x] /= count[n][y][x]
                    out[n][1][y][x] /= count[n][y][x]
    if fill_holes:
        filled = [[[row[:] for row in ch] for ch in b] for b in out]
        for n in range(n_batch):
            for y in range(h):
                for x in range(w):
                    if count[n][y][x] > 0:
                        continue
                    found = []  # (y, x) of the first pixel with count != 0 in each direction
                    for step_y, step_x in [(0, -1), (0, 1), (-1, 0)] + ([(1, 0)] if search_down else []):
                        yy, xx = y + step_y, x + step_x
                        while 0 <= yy < h and 0 <= xx < w and count[n][yy][xx] == 0:
                            yy, xx = yy + step_y, xx + step_x
                        if 0 <= yy < h and 0 <= xx < w and count[n][yy][xx] > 0:
                            found.append((yy, xx))
                    for c in range(2):
                        if found:
                            filled[n][c][y][x] = sum(out[n][c][yy][xx] for yy, xx in found) / len(found)
        out = filled
    return torch.tensor(out, dtype=torch.float64)


def projection_inputs(seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    flow = away_from_integers((2, 2, 6, 7), 3, g, exact=0.3)  # some land exactly on the last column / row
    weight = (0.2 + 5 * torch.rand(2, 1, 6, 7, generator=g, dtype=torch.float64)).float().double()
    return flow.to(dtype), weight.to(dtype)


@pytest.mark.parametrize("weighted", [False, True], ids=["average", "depth-weighted"])
@pytest.mark.parametrize("fill,search_down", [(False, True), (True, True), (True, False)],
                         ids=["holes-zero", "fill-dain", "fill-memcnet"])
def test_flow_projection_matches_the_loop_reference(weighted, fill, search_down):
    flow, weight = projection_inputs(1)
    got = project_flow(flow, weight if weighted else None, fill_holes=fill, search_down=search_down)
    want = projection_reference(flow.double(), weight.double() if weighted else None, fill, search_down)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=0)
    # the draw exercises what it claims: flows leaving the image, holes, and exact last-column landings
    xs, ys = torch.arange(7) + flow[:, 0], torch.arange(6)[:, None] + flow[:, 1]
    assert ((xs < 0) | (xs > 6) | (ys < 0) | (ys > 5)).any() and ((xs == 6) & (ys >= 0) & (ys <= 5)).any()
    holes = project_flow(flow, None).abs().sum(1) == 0
    assert holes.any() and (got.abs().sum(1)[holes] > 0).any() == fill
    if fill:  # MEMC-Net's fill (no downward search) differs from DAIN's on this draw
        other = project_flow(flow, weight if weighted else None, fill_holes=True, search_down=not search_down)
        assert not torch.allclose(got, other)


def test_depth_weighting_lets_the_nearer_pixel_win():
    """Two source pixels land on the same 2x2 block; the weights (inverse depths) 3 and 1 mix their flows 3:1."""
    flow = torch.full((1, 2, 3, 4), 10.0)  # every other pixel leaves the image
    flow[0, :, 0, 0] = torch.tensor([1.5, 0.5])  # (x, y) = (0, 0) -> (1.5, 0.5): pixels x 1..2, y 0..1
    flow[0, :, 2, 3] = torch.tensor([-1.5, -1.5])  # (3, 2) -> (1.5, 0.5) too
    weight = torch.ones(1, 1, 3, 4)
    weight[0, 0, 0, 0] = 3.0
    got = project_flow(flow, weight)
    expected = -(3 * torch.tensor([1.5, 0.5]) + 1 * torch.tensor([-1.5, -1.5])) / 4
    for y, x in [(0, 1), (0, 2), (1, 1), (1, 2)]:
        torch.testing.assert_close(got[0, :, y, x], expected)
    assert got[0, :, 2].abs().sum() == 0 and got[0, :, :, 0].abs().sum() == 0  # holes stay 0
    unweighted = -(torch.tensor([1.5, 0.5]) + torch.tensor([-1.5, -1.5])) / 2
    torch.testing.assert_close(project_flow(flow)[0, :, 0, 1], unweighted)


@pytest.mark.parametrize("fill", [False, True], ids=["holes-zero", "fill-dain"])
def test_flow_projection_gradients_in_the_splatted_values_and_the_weights(fill):
    g = torch.Generator().manual_seed(2)
    flow = away_from_integers((1, 2, 5, 6), 2, g).requires_grad_()
    weight = (0.2 + 5 * torch.rand(1, 1, 5, 6, generator=g, dtype=torch.float64)).requires_grad_()
    assert (project_flow(flow.detach(), None).abs().sum(1) == 0).any(), "the draw should leave holes"
    assert torch.autograd.gradcheck(lambda f, w: project_flow(f, w, fill_holes=fill), (flow, weight))


# -- adaptive warping ----------------------------------------------------------------------------------


def adaptive_warp_reference(image: torch.Tensor, flow: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    n_batch, channels, h, w = image.shape
    im, f, k = image.tolist(), flow.tolist(), filters.tolist()
    out = torch.zeros(n_batch, channels, h, w, dtype=torch.float64)
    for n in range(n_batch):
        for y in range(h):
            for x in range(w):
                fx, fy = f[n][0][y][x], f[n][1][y][x]
                x2, y2 = x + fx, y + fy
                if not (0 <= x2 <= w - 1 and 0 <= y2 <= h - 1 and abs(fx) < w / 2 and abs(fy) < h / 2):
                    for c in range(channels):
                        out[n, c, y, x] = im[n][c][y][x]
                    continue
                left, top = int(x2) - 1, int(y2) - 1  # the 4x4 patch's top-left corner
                alpha, beta = x2 - int(x2), y2 - int(y2)

                def quadrant(c, rows, cols):
                    return sum(im[n][c][min(max(r, 0), h - 1)][min(max(s, 0), w - 1)]  # clamped to the image
                               * k[n][(r - top) * 4 + (s - left)][y][x] for r in rows for s in cols)

                upper, lower = range(top, int(y2) + 1), range(int(y2) + 1, top + 4)
                west, east = range(left, int(x2) + 1), range(int(x2) + 1, left + 4)
                for c in range(channels):
                    out[n, c, y, x] = ((1 - alpha) * (1 - beta) * quadrant(c, upper, west)
                                       + alpha * (1 - beta) * quadrant(c, upper, east)
                                       + (1 - alpha) * beta * quadrant(c, lower, west)
                                       + alpha * beta * quadrant(c, lower, east))
    return out


def warp_inputs(seed: int, batch: int, h: int, w: int, reach: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, h, w, generator=g, dtype=torch.float64)
    flow = away_from_integers((batch, 2, h, w), reach, g)
    filters = torch.randn(batch, 16, h, w, generator=g, dtype=torch.float64)
    return image.to(dtype), flow.to(dtype), filters.to(dtype)


def test_adaptive_warp_matches_the_loop_reference():
    image, flow, filters = warp_inputs(3, 2, 6, 8, 3, torch.float32)
    got = adaptive_warp(image, flow, filters)
    want = adaptive_warp_reference(image.double(), flow.double(), filters.double())
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=0)
    # the draw covers every case: copied pixels (outside, or |flow| >= half the size) and clamped patches
    qx, qy = torch.arange(8) + flow[:, 0], torch.arange(6)[:, None] + flow[:, 1]
    inside = (qx >= 0) & (qy >= 0) & (qx <= 7) & (qy <= 5)
    warped = inside & (flow[:, 0].abs() < 4) & (flow[:, 1].abs() < 3)
    assert (~inside).any() and (inside & ~warped).any() and warped.float().mean() > 0.3
    assert (warped & ((qx < 1) | (qx >= 6) | (qy < 1) | (qy >= 4))).any()


def test_adaptive_warp_gradients_in_image_flow_and_filters():
    image, flow, filters = (t.requires_grad_() for t in warp_inputs(4, 1, 5, 6, 1))
    assert torch.autograd.gradcheck(adaptive_warp, (image, flow, filters))

