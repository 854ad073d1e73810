"""Tiny footage for the source tests, encoded by PyAV into video files of any container frame rate
or any timestamps: shots rendered by the synth renderer (real photos moving smoothly), and
``pendulum`` footage of another kind (accelerating, reversing and rotating motion drawn from
formulas), so that the real-data checks are not tuned to the project's own synth motion."""

from __future__ import annotations

import dataclasses
import functools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from alabench.config import parse_params
from alabench.sources.synth import render_clip
from conftest import tiny_params

WIDTH, HEIGHT = 64, 36


@functools.cache
def shot(index: int, frames: int, speed: tuple[float, float] = (0.2, 1.2), split: str = "test") -> np.ndarray:
    """(T, 36, 64, 3) uint8: one continuous shot; shots from different splits show different photos.
    Cached: do not modify the array."""
    cfg = dataclasses.replace(parse_params(tiny_params()).synth, width=WIDTH, height=HEIGHT, speed=speed,
                              layer_speed=speed)
    return render_clip(cfg, split, index, frames).frames


def encode(path: Path, frames: np.ndarray, fps: int) -> Path:
    """Write (T, H, W, 3) uint8 frames as an H.264 mp4 whose container says ``fps``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
    return path


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@functools.cache
def pendulum(seed: int, frames: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """(T, H, W, 3) uint8: a swinging pendulum bob and a spinning spoked wheel over a static noise
    texture, drawn from formulas (no photo). Unlike the synth renderer (photos translated at a
    constant speed), the motion here accelerates and reverses, and the wheel rotates in place.
    Cached: do not modify the array."""
    rng = np.random.default_rng(seed)
    background = np.repeat(np.repeat(rng.integers(40, 200, (height // 4 + 1, width // 4 + 1, 3)), 4, 0), 4, 1)
    background = background[:height, :width].astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    colour = rng.integers(0, 256, 3).astype(np.float32)
    period, phase, spin = rng.uniform(40, 80), rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.15)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        angle = 0.9 * np.sin(2 * np.pi * t / period + phase)
        bx, by = width * 0.3 + 0.6 * height * np.sin(angle), 0.1 * height + 0.6 * height * np.cos(angle)
        bob = np.clip(1.0 - (np.hypot(xx - bx, yy - by) - height * 0.12), 0.0, 1.0)[..., None]
        wx, wy, radius = width * 0.75, height * 0.5, height * 0.35
        theta = np.arctan2(yy - wy, xx - wx) + spin * t * (1 + 0.02 * t)
        wheel = ((np.hypot(xx - wx, yy - wy) < radius) & (np.cos(6 * theta) > 0))[..., None]
        frame = np.where(wheel, 255.0 - background, background)
        out[t] = np.clip(frame * (1 - bob) + colour * bob, 0, 255).astype(np.uint8)
    return out


def encode_timed(path: Path, frames: np.ndarray, pts: list[int], time_base: Fraction) -> Path:
    """Write frames as an H.264 mp4 with the given presentation timestamps (in ``time_base`` units),
    e.g. alternating intervals for a variable-frame-rate file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=round((len(pts) - 1) / ((pts[-1] - pts[0]) * time_base)))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        stream.options = {"crf": "16", "preset": "veryfast", "bf": "0"}
        for frame, t in zip(frames, pts):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts, vf.time_base = t, time_base
            container.mux(stream.encode(vf))
        container.mux(stream.encode())
    return path
