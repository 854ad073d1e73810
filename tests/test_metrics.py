"""Metrics: the torch PSNR / SSIM equal scikit-image's; LPIPS is 0 for identical frames and grows with noise."""

from __future__ import annotations

import footage
import lpips as lpips_package
import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from alabench.blur import Eq7
from alabench.frames import read_png
from alabench.metrics import Lpips, psnr, psnr_batch, ssim, ssim_batch
from test_weights import LPIPS_DATA, package_lpips


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
    np.testing.assert_array_equal(ssim_batch(frames, targets), [ssim(f, t) for f, t in zip(frames, targets)])
    np.testing.assert_array_equal(psnr_batch(frames, targets), [psnr(f, t) for f, t in zip(frames, targets)])


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


def real_frame_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches of (N, H, W, 3) uint8 outputs and targets from real photographs: the LPIPS repository's
    example images, and frames of a rendered shot (photos in motion) against a neighbour and a blurred copy."""
    ref, p0, p1 = (read_png(LPIPS_DATA / f"ex_{n}.png") for n in ("ref", "p0", "p1"))
    shot = footage.shot(0, 11)  # (11, 36, 64, 3)
    blurred = Eq7(11, 8).average(shot)
    return [(np.stack([p0, p1]), np.stack([ref, ref])),
            (np.stack([shot[0], shot[4], shot[10], blurred]), np.stack([shot[5]] * 4))]


def test_lpips_as_evaluation_scores_equals_the_lpips_package_on_real_frames(weights_dir):
    """The evaluation's Lpips (uint8 frames in, batched) against the lpips package used as its README
    says: lpips.im2tensor (its own [-1, 1] scaling, one image at a time) into lpips.LPIPS(net='alex')."""
    ours = Lpips(weights_dir)
    official = package_lpips("alex", weights_dir)
    for outputs, targets in real_frame_pairs():
        expected = [official(lpips_package.im2tensor(o), lpips_package.im2tensor(t)).item()
                    for o, t in zip(outputs, targets)]
        np.testing.assert_allclose(ours(outputs, targets, batch=2), expected, rtol=1e-5, atol=1e-7)
    ref, p0, p1 = (read_png(LPIPS_DATA / f"ex_{n}.png")[None] for n in ("ref", "p0", "p1"))
    # what the LPIPS repository's test_network.py prints with torchvision's pretrained AlexNet
    assert [ours(ref, p0)[0], ours(ref, p1)[0]] == pytest.approx([0.722, 0.138], abs=0.002)
