"""Metrics: the torch PSNR / SSIM equal scikit-image's; LPIPS is 0 for identical frames and grows with noise."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from alabench.metrics import Lpips, psnr, psnr_batch, ssim, ssim_batch


def noisy(frame: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, frame.shape)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def pairs():
    rng = np.random.default_rng(0)
    photo = data.astronaut()
    yield "random", rng.integers(0, 256, (37, 53, 3), dtype=np.uint8), rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    yield "photo+noise", photo[:352, :480], noisy(photo[:352, :480], 8, 1)
    yield "photo shifted", photo[100:228, :192], photo[102:230, 3:195]
    flat = np.full((40, 60, 3), 250, np.uint8)  # flat, bright: where the float formula cancels
    yield "flat", flat, noisy(flat, 1, 2)
    yield "extremes", np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), 255, np.uint8)
    chelsea = data.chelsea()[:64, :96]
    yield "smallest window", chelsea[:7, :7], noisy(chelsea[:7, :7], 30, 3)


@pytest.mark.parametrize("name, a, b", list(pairs()), ids=[p[0] for p in pairs()])
def test_psnr_and_ssim_equal_skimage(name, a, b):
    assert abs(ssim(a, b) - structural_similarity(a, b, data_range=255, channel_axis=2)) <= 1e-6
    assert abs(psnr(a, b) - peak_signal_noise_ratio(a, b, data_range=255)) <= 1e-6


def test_batches_equal_one_frame_at_a_time():
    frames = np.stack([b for _, _, b in list(pairs())[2:3]] * 2 + [data.astronaut()[100:228, :192]])
    targets = np.stack([data.astronaut()[100:228, :192]] * 3)
    assert np.allclose(ssim_batch(frames, targets), [ssim(f, t) for f, t in zip(frames, targets)], atol=0)
    assert np.allclose(psnr_batch(frames, targets), [psnr(f, t) for f, t in zip(frames, targets)], atol=0)


def test_identical_frames_score_inf_and_one():
    frame = data.coffee()[:64, :64]
    assert psnr(frame, frame) == float("inf") and ssim(frame, frame) == pytest.approx(1.0, abs=1e-9)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="differ in shape"):
        ssim(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        psnr(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="at least 7"):
        ssim(np.zeros((6, 8, 3), np.uint8), np.zeros((6, 8, 3), np.uint8))


def test_lpips_is_zero_for_identical_frames_and_grows_with_noise(weights_dir):
    lpips = Lpips(weights_dir)
    frame = data.astronaut()[::4, ::4]  # 128 x 128
    assert lpips(frame[None], frame[None])[0] == 0.0
    scores = lpips(np.stack([noisy(frame, s, 0) for s in (4, 16, 48)]), np.stack([frame] * 3))
    assert 0 < scores[0] < scores[1] < scores[2]
