"""Image quality, one convention for the whole suite (README, "Evaluation").

Frames are scored as uint8 RGB (outputs are rounded and clipped to uint8 first, as RIFE's and
BIN's benchmarks do), data range 255, full frame with no border crop. PSNR is computed on all
three channels together. SSIM follows scikit-image's ``structural_similarity`` defaults: a 7×7
uniform window, sample covariance, K1 = 0.01, K2 = 0.03, computed per channel and averaged; like
scikit-image, the SSIM map is averaged over the pixels whose window lies inside the frame. LPIPS is
AlexNet v0.1 on the genuine ImageNet backbone (``alabench.weights``). A perfect frame has infinite
PSNR; averages cap each frame's PSNR (``evaluate.psnr_cap``) and say how many frames were capped.

The torch implementations below match scikit-image to ~1e-9 (exact integer arithmetic where it
matters, see ``_ssim_frame``) and are several times faster (``bench/metrics.py``), which matters
when every frame of every method is scored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

SSIM_WINDOW = 7
SSIM_K1, SSIM_K2 = 0.01, 0.03
DATA_RANGE = 255.0


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(..., 3, H, W) float in [0, 1] -> (..., H, W, 3) uint8, rounded and clipped."""
    return (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).movedim(-3, -1).cpu().numpy()


def _as_batch(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) or (H, W, 3) uint8 -> (N, H, W, 3) uint8 tensor (no copy)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.shape[-1] != 3 or frames.ndim not in (3, 4):
        raise ValueError(f"expected (N, H, W, 3) or (H, W, 3) uint8 frames, got {frames.dtype} {frames.shape}")
    return torch.from_numpy(np.ascontiguousarray(frames)).reshape(-1, *frames.shape[-3:])


def _check_pair(outputs: np.ndarray, targets: np.ndarray) -> None:
    if np.shape(outputs) != np.shape(targets):
        raise ValueError(f"outputs {np.shape(outputs)} and targets {np.shape(targets)} differ in shape")


def psnr_batch(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """PSNR in dB of each pair of (N, H, W, 3) uint8 frames, all channels together; ``inf`` if identical."""
    _check_pair(outputs, targets)
    with _one_thread():
        diff = _as_batch(outputs).int() - _as_batch(targets).int()
        squared = (diff * diff).flatten(1).sum(1).double()  # exact: an integer sum
    mse = squared.numpy() / diff[0].numel()
    with np.errstate(divide="ignore"):
        return 10 * np.log10(DATA_RANGE ** 2 / mse)


def ssim_batch(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """SSIM of each pair of (N, H, W, 3) uint8 frames; equals ``skimage.metrics.structural_similarity(
    output, target, data_range=255, channel_axis=2)`` (7×7 uniform window, per channel, averaged)."""
    _check_pair(outputs, targets)
    x, y = _as_batch(outputs), _as_batch(targets)
    if min(x.shape[1:3]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels, got {tuple(x.shape[1:3])}")
    with _one_thread():
        return np.array([_ssim_frame(a, b) for a, b in zip(x, y)])


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch single-threaded inside: PSNR and SSIM are small memory-bound operations, for which
    sharing the work between threads costs more than it saves (far more when another process holds
    a core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _window_sums(maps: torch.Tensor) -> torch.Tensor:
    """Sums over every 7×7 window lying inside (M, h, w, C) -> (M, h-6, w-6, C) (scikit-image's crop)."""
    return maps.unfold(1, SSIM_WINDOW, 1).sum(-1).unfold(2, SSIM_WINDOW, 1).sum(-1)


def _ssim_frame(x: torch.Tensor, y: torch.Tensor, rows: int = 24) -> float:
    """Mean SSIM of two (H, W, 3) uint8 frames.

    Exact arithmetic where scikit-image's float64 formula cancels: window sums of x, y, x²+y², xy
    are integers below 2^24 (exact in float32); the numerators of the variances, n·Σx² − (Σx)², are
    formed in int32 (below 2^31); only the final ratio is rounded, to float32 (relative error
    < 1e-6). Worked from the start in strips of ``rows`` rows, channels last: the temporaries stay
    small (cached, and no page faults of fresh large allocations) and every operation runs over
    contiguous memory. That is most of the speed.
    """
    n = SSIM_WINDOW ** 2
    c1 = (SSIM_K1 * DATA_RANGE) ** 2 * n * n  # C1 and C2 scaled like the sums below
    c2 = (SSIM_K2 * DATA_RANGE) ** 2 * n * (n - 1)
    height = x.shape[0] - SSIM_WINDOW + 1
    total = 0.0
    for top in range(0, height, rows):
        strip = slice(top, min(top + rows, height) + SSIM_WINDOW - 1)
        a, b = x[strip].float(), y[strip].float()
        maps = torch.stack([a, b, a * a + b * b, a * b])  # only the sum of the squares enters (vx + vy)
        sx, sy, sq, sxy = _window_sums(maps).int()
        pxy, norms = sx * sy, sx * sx + sy * sy
        # SSIM = (2 ux uy + C1)(2 vxy + C2) / ((ux² + uy² + C1)(vx + vy + C2)), sample covariances,
        # numerator and denominator multiplied by n² · n(n-1) to keep integers.
        a1 = (2 * pxy).float() + c1
        a2 = (2 * (n * sxy - pxy)).float() + c2
        b1 = norms.float() + c1
        b2 = (n * sq - norms).float() + c2
        total += ((a1 * a2) / (b1 * b2)).sum(dtype=torch.float64).item()
    return total / (height * (x.shape[1] - SSIM_WINDOW + 1) * x.shape[2])


def psnr(output: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of two (H, W, 3) uint8 frames; ``inf`` when they are identical."""
    return float(psnr_batch(output, target)[0])


def ssim(output: np.ndarray, target: np.ndarray) -> float:
    """SSIM of two (H, W, 3) uint8 frames (7×7 uniform window, per channel, data range 255)."""
    return float(ssim_batch(output, target)[0])


class Lpips:
    """LPIPS (AlexNet, v0.1 heads, genuine ImageNet backbone) of uint8 frames; lower is closer."""

    def __init__(self, weights_dir: Path | None = None, device: torch.device | str = "cpu") -> None:
        from alabench.weights import DEFAULT_DIR, lpips_model  # loads weights: only callers that score pay

        self.device = torch.device(device)
        self.model = lpips_model("alex", weights_dir or DEFAULT_DIR).to(self.device)

    @torch.no_grad()
    def __call__(self, outputs: np.ndarray, targets: np.ndarray, batch: int = 16) -> np.ndarray:
        """LPIPS of each pair of (N, H, W, 3) uint8 frames (scaled to [-1, 1] as the lpips package expects)."""
        _check_pair(outputs, targets)
        x, y = (_as_batch(f).movedim(-1, 1).float() for f in (outputs, targets))
        scores = [self.model(a.to(self.device) / 127.5 - 1, b.to(self.device) / 127.5 - 1).flatten().cpu()
                  for a, b in zip(x.split(batch), y.split(batch))]
        return torch.cat(scores).double().numpy()
