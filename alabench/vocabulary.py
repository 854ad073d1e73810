"""The benchmark's words, defined once: kinds, tasks, metrics, protocols, conventions, headlines.

Kept free of torch and of the rest of the suite (standard library only), so that anything that
names a kind, a metric or a protocol (stages, the report, the results checks) can import it cheaply.

* A *kind* is what a number averages: ``deblur`` frames, ``interp`` frames, ``joint`` = (deblur +
  interp) / 2, the rule of every published joint number, and ``pooled`` = every frame of both kinds.
* A *task* is what a method addresses (``alabench.methods.Method.tasks``): ``deblur`` and
  ``interpolate``. A method's number for a kind is ranked only where it addresses the kind's tasks.
* A *protocol* is how the test inputs are made (``alabench.blur``), and each has a *headline
  convention*, the averaging its tables use (``alabench.stats``), set by ``report.headline`` in
  params.yaml.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alabench.config import ReportParams

# The kinds of a table's columns, in the paper's order; FRAME_KINDS: the frames each average reads.
KINDS = ("deblur", "interp", "joint")
FRAME_KINDS: dict[str, tuple[str, ...]] = {"deblur": ("deblur",), "interp": ("interp",),
                                           "joint": ("deblur", "interp"), "pooled": ("deblur", "interp")}
# The two kinds of input under `mixed`, by frames.csv's ``input_blurry`` flag (deblurring is scored on each apart).
INPUTS: dict[str, int] = {"sharp": 0, "blurry": 1}
KIND_LABEL = {"deblur": "Deblurring", "interp": "Interpolation", "joint": "Joint deblurring and interpolation"}

TASKS = ("deblur", "interpolate")
# The tasks a method must address for its number of a kind to be ranked.
TASKS_OF_KIND: dict[str, frozenset[str]] = {"deblur": frozenset({"deblur"}), "interp": frozenset({"interpolate"}),
                                            "joint": frozenset(TASKS)}


def addresses(tasks: Iterable[str], kind: str) -> bool:
    """A method with ``tasks`` addresses every task ``kind`` needs (so its number there is ranked)."""
    return TASKS_OF_KIND[kind] <= set(tasks)


@dataclass(frozen=True)
class Metric:
    """A frame metric: how it is printed and which way is better."""

    name: str
    label: str
    higher_is_better: bool
    digits: int  # decimals on the page and in printed tables

    def format(self, value: float | None) -> str:
        """``value`` to this metric's digits; "–" where it is missing or not finite."""
        return "–" if value is None or not math.isfinite(value) else f"{value:.{self.digits}f}"


METRIC = {m.name: m for m in (Metric("psnr", "PSNR", True, 2), Metric("ssim", "SSIM", True, 4),
                              Metric("lpips", "LPIPS", False, 4))}
METRICS = tuple(METRIC)

PROTOCOLS = ("all_blurry", "mixed")
CONVENTIONS = ("per_clip", "per_clip_mse", "per_frame")
# report.headline's values in params.yaml (README "Protocol"): per_clip is the published mean of frame
# PSNRs; under mixed, sharp inputs returned exactly would score the PSNR cap, so each unit's PSNR comes
# from its mean squared error. Used where no params say otherwise.
HEADLINE = {"all_blurry": "per_clip", "mixed": "per_clip_mse"}


def headline_convention(protocol: str, report: ReportParams | Mapping[str, str] | None = None) -> str:
    """The averaging convention every table of ``protocol`` prints: ``report.headline``'s (the report
    section of params.yaml, or that mapping itself) where it names the protocol, else :data:`HEADLINE`'s."""
    chosen = getattr(report, "headline", report) or {}
    if protocol in chosen:
        return chosen[protocol]
    if protocol not in HEADLINE:
        raise ValueError(f"protocol {protocol!r} has no headline convention: known protocols are {list(PROTOCOLS)}")
    return HEADLINE[protocol]
