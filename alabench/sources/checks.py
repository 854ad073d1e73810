"""What real-world footage is checked for before it becomes clips, and how frames become clips.

Eq. 7 assumes consecutive frames are 1/240 s apart and show one continuous shot. Two things break
that in footage from the web: a stream that was frame-rate converted (frames repeated to fill a
higher rate) and shot cuts (a blurry input averaged across a cut mixes two scenes). Both show in
the mean absolute difference ``d_t`` between frame ``t`` and frame ``t + 1`` (0-255):

* a *repeated* pair has ``d_t`` near zero between pairs that show motion: ``d_t <= repeat_ratio``
  times the larger of its two neighbours. A slow-down or a still scene changes ``d`` gradually and
  is not flagged; frames repeated 2x or 4x make ``d`` drop and rise at once;
* a *cut* is an isolated spike of ``d`` measured on small thumbnails (``THUMB_WIDTH`` pixels wide,
  so that the thresholds mean the same at any frame size and small motion averages out):
  ``d_t >= cut_diff`` and ``d_t >= cut_ratio`` times the median ``d`` of the ``cut_window`` pairs
  on either side. Fast smooth motion raises the whole neighbourhood together and is not a cut.

``bench/frame_checks.py`` measures both on rendered footage.

Two more things eq. 7 assumes are measured on every source:

* *timing regularity*: frames equally spaced in time. A variable-frame-rate file (phones do this)
  has irregular timestamps while its average rate looks right. ``timing_jitter`` is the largest
  deviation of one frame interval from the mean interval, as a share of the mean, after allowing
  one unit of timestamp rounding (a WebM's 1 ms timestamps cannot space 240 fps frames exactly);
* *the source size*: a source smaller than the output frames is upscaled (it has less detail than
  its size says), and one of another shape is stretched; ``aspect_change`` measures the stretch.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from alabench.config import ChecksParams

THUMB_WIDTH = 32


def frame_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two (H, W, 3) uint8 frames, 0-255."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def timing_jitter(times: Sequence[float | None], tick: float) -> float | None:
    """Largest |interval - mean interval| / mean interval over consecutive frames, less one ``tick``
    (the timestamps' unit, s) of rounding; 0 for evenly spaced frames, 0.5 for intervals alternating
    1/480 s and 1/160 s. None without timestamps (frame folders) or with fewer than 3 frames."""
    if len(times) < 3 or any(t is None for t in times):
        return None
    t = np.asarray(times, dtype=np.float64)
    mean = (t[-1] - t[0]) / (len(t) - 1)
    if mean <= 0:
        return float("inf")
    return float(max(0.0, (np.abs(np.diff(t) - mean) - tick).max()) / mean)


def aspect_change(src_width: int, src_height: int, width: int, height: int) -> float:
    """Relative stretch of the picture's shape when resized to ``width`` x ``height`` (+0.039 for
    224x128 -> 640x352; +0.023 for Adobe240's 1280x720 -> 640x352, which the paper does)."""
    return (width / height) / (src_width / src_height) - 1.0


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """The frame shrunk (area filter) to ``THUMB_WIDTH`` pixels wide, aspect kept."""
    height = max(1, round(THUMB_WIDTH * frame.shape[0] / frame.shape[1]))
    return cv2.resize(frame, (THUMB_WIDTH, height), interpolation=cv2.INTER_AREA)


def repeated_pairs(d: np.ndarray, checks: ChecksParams) -> np.ndarray:
    """Boolean per pair of full-size frames: frame t+1 is (nearly) a repeat of frame t."""
    padded = np.concatenate([[0.0], d, [0.0]])
    beside = np.maximum(padded[:-2], padded[2:])
    return (d <= checks.repeat_ratio * beside) & (beside > 0)


def cut_scores(d: np.ndarray, window: int) -> np.ndarray:
    """Per pair, ``d_t`` over the median ``d`` of its neighbours (inf where the neighbours are still)."""
    scores = np.zeros(len(d))
    for t in range(len(d)):
        around = np.concatenate([d[max(t - window, 0):t], d[t + 1:t + 1 + window]])
        median = float(np.median(around)) if len(around) else 0.0
        scores[t] = d[t] / median if median > 0 else (np.inf if d[t] > 0 else 0.0)
    return scores


def find_cuts(d_thumb: np.ndarray, checks: ChecksParams) -> list[int]:
    """Frame indices where a new shot starts (the cut lies between frame t-1 and t), from the ``d``
    of consecutive thumbnails."""
    scores = cut_scores(d_thumb, checks.cut_window)
    return [t + 1 for t in range(len(d_thumb)) if d_thumb[t] >= checks.cut_diff and scores[t] >= checks.cut_ratio]


def plan_clips(frames: int, cuts: list[int], min_frames: int, max_frames: int) -> list[tuple[int, int]]:
    """``[start, stop)`` frame ranges of the clips a video gives: shots between cuts, a shot shorter
    than ``min_frames`` dropped, a shot longer than ``max_frames`` cut into equal pieces (each at
    least ``min_frames`` long where the shot allows)."""
    bounds = [0, *sorted(c for c in cuts if 0 < c < frames), frames]
    clips: list[tuple[int, int]] = []
    for start, stop in zip(bounds, bounds[1:]):
        length = stop - start
        if length < min_frames:
            continue
        pieces = max(1, min(-(-length // max_frames), length // min_frames))
        edges = [start + round(i * length / pieces) for i in range(pieces + 1)]
        clips.extend(zip(edges, edges[1:]))
    return clips
