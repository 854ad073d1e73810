"""Image quality, one convention for the whole suite (README, "Protocol").

Frames are scored as uint8 RGB (outputs are rounded and clipped to uint8 first, as RIFE's and
BIN's benchmarks do), data range 255, full frame with no border crop. PSNR is computed on all
three channels together. SSIM follows scikit-image's defaults: a 7×7 uniform window, computed per
channel and averaged. A perfect frame has infinite PSNR; averages cap each frame's PSNR (a param)
and say how many frames were capped.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity

def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(..., 3, H, W) float in [0, 1] -> (..., H, W, 3) uint8, rounded and clipped."""
    return (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).movedim(-3, -1).cpu().numpy()


def psnr(output: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of two (H, W, 3) uint8 frames; ``inf`` when they are identical."""
    mse = np.mean((output.astype(np.float64) - target.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(output: np.ndarray, target: np.ndarray) -> float:
    """SSIM of two (H, W, 3) uint8 frames (7×7 uniform window, per channel, data range 255)."""
    return float(structural_similarity(output, target, data_range=255, channel_axis=2, win_size=7))
