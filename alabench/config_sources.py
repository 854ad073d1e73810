"""The params sections of real footage (the fetch@<dataset> stages and alabench/sources/): which data
sets to fetch, frame extraction, the frame checks, the network, and each source's own knobs. Part of
the params schema, ``alabench.config``, which assembles them into ``Params``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from alabench.names import NAME, check_path
from alabench.schema import ParamError, Probability, Range

RealDatasetName = Literal["adobe240", "youtube240", "local"]  # built by a fetch@<name> stage (stages.fetch lists them)


@dataclass(frozen=True)
class FetchParams:
    """Which real data sets exist as ``fetch@<name>`` stages, and the folder each reads (a DVC dep).

    Empty by default, so that a plain ``dvc repro`` never goes online.
    """

    datasets: dict[Annotated[RealDatasetName, NAME], str]  # adobe240 / youtube240: committed lists; local: your videos

    def __post_init__(self) -> None:
        for name, folder in self.datasets.items():
            check_path(f"fetch.datasets.{name}", folder, inside_repo=False)  # a DVC dependency, never a command word


FrameSize = Annotated[int, Range(32, 4096)]
Fps = Annotated[float, Range(1.0, 100000.0)]


@dataclass(frozen=True)
class VideoParams:
    """Frame extraction shared by every real source (alabench/sources/video.py)."""

    width: FrameSize  # output frames, pixels (paper §5.1: 1280x720 resized to 640x352)
    height: FrameSize
    max_clip_frames: Annotated[int, Range(2, 100000)]  # longer clips are cut into equal pieces
    workers: Annotated[int, Range(1, 64)]  # videos extracted in parallel
    png_compression: Annotated[int, Range(0, 9)]


@dataclass(frozen=True)
class ChecksParams:
    """Frame checks (alabench/sources/checks.py); d = mean |frame - previous frame|, 0-255. They reject
    youtube240 and local videos; adobe240's standard videos are only flagged."""

    repeat_ratio: Annotated[float, Range(0.0, 1.0)]  # repeated: d <= this x the larger neighbouring d
    max_repeated: Probability  # a larger share of repeated pairs rejects the video
    cut_diff: Annotated[float, Range(0.0, 255.0)]  # a cut needs thumbnail d >= this ...
    cut_ratio: Annotated[float, Range(1.0, 1e6)]  # ... and d >= this x the median d around it
    cut_window: Annotated[int, Range(1, 1000)]  # pairs on each side that make that median
    max_timing_jitter: Annotated[float, Range(0.0, 100.0)]  # frame interval vs the mean: beyond, rejected
    max_aspect_change: Annotated[float, Range(0.0, 10.0)]  # resize stretching the shape more: flagged
    min_width: Annotated[int, Range(0, 8192)]  # a smaller source is rejected (0: any)
    min_height: Annotated[int, Range(0, 8192)]


@dataclass(frozen=True)
class NetworkParams:
    retries: Annotated[int, Range(0, 100)]  # per file, after a dropped connection or a server error
    backoff_s: Annotated[float, Range(0.0, 3600.0)]  # wait before retry k: backoff_s * 2**k
    timeout_s: Annotated[float, Range(1.0, 3600.0)]  # socket timeout


@dataclass(frozen=True)
class Adobe240Params:
    url: str  # the original high-fps videos zip
    min_fps: Fps  # a container frame rate below this rejects the video


@dataclass(frozen=True)
class YouTube240Params:
    search: tuple[str, ...]  # yt-dlp search URLs, e.g. "ytsearch100:240fps slow motion"
    evidence: str  # regex on title and description; group 1 = the stated capture rate
    min_fps: Fps  # a stated or declared capture rate below this rejects the candidate
    target: Annotated[int, Range(1, 10000)]  # accepted videos wanted (paper: 60)
    min_height: Annotated[int, Range(0, 8192)]  # video-only stream height (paper: 720)
    max_height: Annotated[int, Range(1, 8192)]
    max_duration_s: Annotated[float, Range(1.0, 1e6)]

    def __post_init__(self) -> None:
        try:
            groups = re.compile(self.evidence).groups
        except re.error as err:
            raise ParamError(f"youtube240.evidence = {self.evidence!r} is not allowed: not a valid "
                             f"regular expression ({err})") from None
        if groups < 1:
            raise ParamError(f"youtube240.evidence = {self.evidence!r} is not allowed: group 1 must "
                             "capture the frame rate, e.g. '(\\d{3,4}) ?fps'")
        if self.min_height > self.max_height:
            raise ParamError(f"youtube240.min_height = {self.min_height} is not allowed: must be <= "
                             f"youtube240.max_height = {self.max_height}")


@dataclass(frozen=True)
class LocalParams:
    min_fps: Fps  # a capture rate below this rejects the video (capture_fps.csv, or the container's)
