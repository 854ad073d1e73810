"""How much faster are the torch PSNR / SSIM than scikit-image's, and do they agree?

Scores one 640×352 RGB frame pair (the paper's frame size) with both implementations, checks that
the values agree to 1e-6, and prints the best-of-N time of each and the ratio (the issue asks
for SSIM at least 5× faster). Timings on a shared machine are noisy: run it twice.

    .venv/bin/python bench/metrics.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from alabench.metrics import psnr_batch, ssim_batch


def frame_pair() -> tuple[np.ndarray, np.ndarray]:
    """A real photo cropped / tiled to 352×640 and a shifted, noisy copy of it."""
    photo = data.astronaut()  # 512×512
    frame = np.concatenate([photo, photo[:, :128]], axis=1)[:352]
    noise = np.random.default_rng(0).normal(0, 6, frame.shape)
    other = np.clip(np.roll(frame, 2, axis=1) + noise, 0, 255).astype(np.uint8)
    return frame, other


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    a, b = frame_pair()
    ref_ssim = structural_similarity(a, b, data_range=255, channel_axis=2)
    ref_psnr = peak_signal_noise_ratio(b, a, data_range=255)
    ours_ssim, ours_psnr = ssim_batch(a, b)[0], psnr_batch(a, b)[0]
    print(f"frame 640x352 RGB, best of {args.repeats} (the torch metrics run single-threaded, as skimage)")
    print(f"SSIM  skimage {ref_ssim:.10f}  torch {ours_ssim:.10f}  |diff| {abs(ref_ssim - ours_ssim):.1e}")
    print(f"PSNR  skimage {ref_psnr:.10f}  torch {ours_psnr:.10f}  |diff| {abs(ref_psnr - ours_psnr):.1e}")
    for name, ref, ours in (
        ("SSIM", lambda: structural_similarity(a, b, data_range=255, channel_axis=2), lambda: ssim_batch(a, b)),
        ("PSNR", lambda: peak_signal_noise_ratio(b, a, data_range=255), lambda: psnr_batch(a, b)),
    ):
        t_ref, t_ours = best_time(ref, args.repeats), best_time(ours, args.repeats)
        print(f"{name}  skimage {t_ref * 1e3:7.2f} ms   torch {t_ours * 1e3:7.2f} ms   ratio {t_ref / t_ours:5.1f}x")


if __name__ == "__main__":
    main()
