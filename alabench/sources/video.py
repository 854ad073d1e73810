"""The one frame extraction that every real source goes through: a video (or a folder of frames)
into clips of sharp 240 fps PNG frames.

Decoding uses PyAV; frames come as stored (never resampled to a constant rate: no frame is
repeated or dropped), each turned upright as a player would show it, then resized to the
configured size with an area filter (antialiased, as the paper's 1280x720 -> 640x352 needs). Their
timestamps give the timing regularity, the first frame the source size (see ``checks.py``).
Frames are written as they are decoded into a hidden folder beside the output, so memory stays
flat for long videos; only when the whole video is decoded and checked do its clips move into
place. A video that fails half-way therefore leaves nothing behind, and one that was done is never
redone (see ``extract.py``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from alabench.blur import Eq7
from alabench.config import ChecksParams, ParamError, Params
from alabench.frames import FrameError, frame_name, natural_key, write_png
from alabench.sources.checks import (aspect_change, find_cuts, frame_difference, plan_clips, repeated_pairs,
                                     thumbnail, timing_jitter)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Video:
    """One video of a source, and what is known about it before decoding."""

    source: str  # where it came from: the zip, sources.csv, a search query, the local folder
    id: str  # its name within the source (file name, URL)
    path: Path  # the file, or a folder of frames
    name: str  # clip names are <name>-000, <name>-001, ...
    split: str
    capture_fps: float | None = None  # None: the container's frame rate is the capture rate
    capture_fps_from: str = "container"


@dataclass(frozen=True)
class Extraction:
    """How every video of one data set becomes clips."""

    width: int
    height: int
    png_compression: int
    min_clip_frames: int  # one training window of blurred inputs
    max_clip_frames: int
    min_fps: float
    min_height: int  # a smaller video is rejected
    checks: ChecksParams
    reject: bool  # True: repeated frames, cuts, irregular timing and small sources reject or split a
    # video (footage from the web, your own); False: a fixed standard set (Adobe240), only flagged

    @classmethod
    def from_params(cls, params: Params, min_fps: float, reject: bool, min_height: int = 0) -> Extraction:
        v = params.video
        shortest = Eq7.from_params(params.blur).span(params.train_data.window)
        if v.max_clip_frames < shortest:
            raise ParamError(f"video.max_clip_frames = {v.max_clip_frames} is not allowed: must be >= {shortest}, "
                             "the sharp frames of one training window (blur.window, blur.stride, train_data.window)")
        return cls(v.width, v.height, v.png_compression, shortest, v.max_clip_frames, min_fps, min_height,
                   params.checks, reject)


@dataclass
class Result:
    """What extraction found; ``status`` ok, rejected (the video breaks a rule) or failed (unreadable)."""

    status: str
    reason: str = ""
    capture_fps: float | None = None
    capture_fps_from: str = ""
    container_fps: float | None = None
    width: int = 0  # the source's size, upright, before resizing
    height: int = 0
    frames: int = 0
    timing_jitter: float | None = None  # see checks.timing_jitter; None: no timestamps (frame folders)
    flags: tuple[str, ...] = ()  # kept but worth a look: irregular_timing, upscaled, aspect_changed, cuts
    clips: tuple[str, ...] = ()

    def note(self, flag: str, text: str) -> None:
        """Flag an accepted video and say why in its reason (and the log)."""
        self.flags += (flag,)
        self.reason = "; ".join(filter(None, [self.reason, text]))


@dataclass(frozen=True)
class _Probe:
    fps: float | None
    width: int
    height: int
    expected_frames: int  # 0 when the container does not say
    tick: float  # the timestamps' unit, seconds (their rounding); 0 for frame folders


@contextmanager
def open_frames(path: Path) -> Iterator[tuple[_Probe, Iterator[tuple[np.ndarray, float | None]]]]:
    """Probe a video file or frame folder and iterate its frames as stored, each as upright
    (H, W, 3) uint8 RGB with its presentation time in seconds (None in a frame folder)."""
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
        if not files:
            raise FrameError(f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in this frame folder")
        with Image.open(files[0]) as first:
            size = first.size
        yield _Probe(None, size[0], size[1], len(files), 0.0), _read_images(files)
        return
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise FrameError(f"{path}: no video stream in this file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate) if stream.average_rate else None
        probe = _Probe(fps, stream.codec_context.width, stream.codec_context.height, stream.frames or 0,
                       float(stream.time_base or 0))
        yield probe, _decode_stream(container, stream)


def _decode_stream(container: av.container.InputContainer,
                   stream: av.VideoStream) -> Iterator[tuple[np.ndarray, float | None]]:
    for frame in container.decode(stream):
        time = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
        yield np.rot90(frame.to_ndarray(format="rgb24"), k=round(frame.rotation / 90) % 4), time


def _read_images(files: list[Path]) -> Iterator[tuple[np.ndarray, None]]:
    for path in files:
        with Image.open(path) as img:
            yield np.asarray(img.convert("RGB")), None


def safe_name(text: str) -> str:
    """A clip name prefix from a file name or video id: letters, digits, ``_ . -`` only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "video"


def resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-filtered resize (antialiased when shrinking), the same for every source."""
    if frame.shape[:2] == (height, width):
        return np.ascontiguousarray(frame)
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def extract_video(video: Video, split_dir: Path, cfg: Extraction) -> Result:
    """Decode, check and split one video into ``split_dir/<name>-NNN/%05d.png``.

    Returns ``failed`` for a file that cannot be decoded (corrupt, truncated), ``rejected`` for one
    that breaks a rule (capture rate, repeated frames, too short), ``ok`` with the clips written.
    """
    work = split_dir / f".{video.name}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    result = Result("failed")
    try:
        result, d, d_thumb = _decode(video, work, cfg)
        plan = _check(d, d_thumb, result, cfg) if result.status == "ok" else []
        if result.status == "ok":
            result.clips = _move_clips(video.name, work, split_dir, plan)
            if not result.clips:
                result.status = "rejected"
                result.reason = "; ".join(filter(None, [
                    f"too short: no shot of {cfg.min_clip_frames} frames (one training window) or more", result.reason]))
    except (av.FFmpegError, OSError, FrameError) as err:
        why = err.strerror if isinstance(err, av.FFmpegError) and err.strerror else str(err)
        result.status, result.reason = "failed", f"cannot decode {video.path}: {why} (corrupt or truncated?)"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.log(logging.WARNING if result.flags else logging.INFO, "%s: %s %s", video.id, result.status, result.reason)
    return result


def _decode(video: Video, work: Path, cfg: Extraction) -> tuple[Result, np.ndarray, np.ndarray]:
    """Write every frame, resized, to ``work/%05d.png``; return the result so far and the d_t of
    consecutive frames and of their thumbnails (see checks.py)."""
    d: list[float] = []
    d_thumb: list[float] = []
    with open_frames(video.path) as (probe, frames):
        result = Result("ok", container_fps=probe.fps, width=probe.width, height=probe.height)
        result.capture_fps = video.capture_fps or probe.fps
        result.capture_fps_from = video.capture_fps_from if video.capture_fps else "container"
        if result.capture_fps is None:
            result.status = "rejected"
            result.reason = "capture rate unknown: there is no container frame rate; give it in the source's list"
        elif result.capture_fps < cfg.min_fps:
            result.status = "rejected"
            result.reason = (f"capture rate {result.capture_fps:g} fps ({result.capture_fps_from}) is below "
                             f"min_fps {cfg.min_fps:g}")
        elif probe.height < cfg.min_height:
            result.status = "rejected"
            result.reason = f"{probe.width}x{probe.height} is below the minimum height {cfg.min_height}"
        if result.status != "ok":
            return result, np.zeros(0), np.zeros(0)
        previous = previous_thumb = None
        times: list[float | None] = []
        for frame, time in frames:
            if not times and not _check_size(frame, result, cfg):
                return result, np.zeros(0), np.zeros(0)
            times.append(time)
            small = resize(frame, cfg.width, cfg.height)
            write_png(work / frame_name(result.frames), small, cfg.png_compression)
            thumb = thumbnail(small)
            if previous is not None:
                d.append(frame_difference(previous, small))
                d_thumb.append(frame_difference(previous_thumb, thumb))
            previous, previous_thumb = small, thumb
            result.frames += 1
    result.timing_jitter = timing_jitter(times, probe.tick)
    missing = probe.expected_frames - result.frames
    if result.frames == 0 or missing > max(2, probe.expected_frames // 100):
        result.status = "failed"
        result.reason = (f"cannot decode {video.path}: truncated or corrupt, {result.frames} of "
                         f"{probe.expected_frames} frames decoded")
    return result, np.asarray(d), np.asarray(d_thumb)


def _check_size(frame: np.ndarray, result: Result, cfg: Extraction) -> bool:
    """Record the source size of the first (upright) frame; flag upscaling and an aspect change
    beyond ``checks.max_aspect_change``; reject a source below ``checks.min_width`` x ``min_height``
    (where ``cfg.reject``). False when rejected."""
    c = cfg.checks
    result.height, result.width = frame.shape[:2]
    size, out = f"{result.width}x{result.height}", f"{cfg.width}x{cfg.height}"
    if cfg.reject and (result.width < c.min_width or result.height < c.min_height):
        result.status = "rejected"
        result.reason = f"source {size} is below checks.min_width x min_height {c.min_width}x{c.min_height}"
        return False
    if result.width < cfg.width or result.height < cfg.height:
        result.note("upscaled", f"upscaled: source {size} is smaller than the {out} frames (video.width, height)")
    change = aspect_change(result.width, result.height, cfg.width, cfg.height)
    if abs(change) > c.max_aspect_change:
        ratios = f"{result.width / result.height:.2f} -> {cfg.width / cfg.height:.2f}"
        result.note("aspect_changed", f"aspect changed: {ratios} ({change:+.1%}, beyond checks.max_aspect_change "
                                      f"{c.max_aspect_change:.0%}): the picture is stretched")
    return True


def _check(d: np.ndarray, d_thumb: np.ndarray, result: Result, cfg: Extraction) -> list[tuple[int, int]]:
    """Apply the frame checks (rejecting ``result`` if they fail); return the clips' frame ranges."""
    cuts: list[int] = []
    jitter, limit = result.timing_jitter, cfg.checks.max_timing_jitter
    if jitter is not None and jitter > limit:
        text = (f"irregular frame timing: a frame interval deviates {jitter:.0%} from the mean, beyond "
                f"checks.max_timing_jitter {limit:.0%} (variable frame rate?); eq. 7 needs equally spaced frames")
        if cfg.reject:
            result.status, result.reason = "rejected", text
            return []
        result.note("irregular_timing", text)
    if cfg.reject and len(d):
        share = float(repeated_pairs(d, cfg.checks).mean())
        if share > cfg.checks.max_repeated:
            result.status = "rejected"
            result.reason = (f"repeated frames: {share:.0%} of consecutive frames are (near-)identical, above "
                             f"checks.max_repeated {cfg.checks.max_repeated:.0%}: the stream was frame-rate converted")
            return []
        cuts = find_cuts(d_thumb, cfg.checks)
        if cuts:
            result.note("cuts", f"{len(cuts)} shot cut(s), before frame(s) {' '.join(map(str, cuts))}")
    return plan_clips(result.frames, cuts, cfg.min_clip_frames, cfg.max_clip_frames)


def _move_clips(name: str, work: Path, split_dir: Path, plan: list[tuple[int, int]]) -> tuple[str, ...]:
    """Renumber the planned frame ranges into clip folders, then move each into ``split_dir``."""
    clips = []
    for i, (start, stop) in enumerate(plan):
        clip = f"{name}-{i:03d}"
        staged = work / "clips" / clip
        staged.mkdir(parents=True)
        for t in range(start, stop):
            os.replace(work / frame_name(t), staged / frame_name(t - start))
        clips.append(clip)
    for clip in clips:
        shutil.rmtree(split_dir / clip, ignore_errors=True)
        os.replace(work / "clips" / clip, split_dir / clip)
    return tuple(clips)
