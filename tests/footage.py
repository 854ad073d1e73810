"""Tiny real-looking footage for the source tests: shots rendered by the synth renderer (real photos
moving smoothly), encoded by PyAV into video files of any container frame rate."""

from __future__ import annotations

import dataclasses
import functools
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
