"""What an evaluation writes and the report reads: the columns of ``frames.csv`` and the averages of
``summary.json``, in pandas and numpy alone (the report stage never imports torch: 1 s of its start).

Per frame (``frames.csv``): seed (the training seed of the checkpoint; empty for a method that does
not train), video (the test unit: the source video the clip was cut from, or ``photo:<name>`` on
synth), clip, k, kind (deblur: input k's deblurred frame; interp: the frame between inputs k and
k+1), input_blurry (1 when the input, or for interp either neighbour, is blurry), PSNR (``inf`` for
a frame identical to its ground truth), SSIM, LPIPS.

Summary (``summary.json``): for deblur, interp, joint ((deblur + interp) / 2, as published) and
pooled (both kinds' frames together), each metric and each averaging convention of
:mod:`alabench.stats` (``per_clip``, ``per_clip_mse``, ``per_frame``), the mean over seeds with a
bootstrap interval over units (and seeds), the per-seed means and their spread; the same for the
frames whose inputs were all sharp and those with a blurry input; the number of frames over
``psnr_cap``; ``units``: what a test unit is (``photo``, ``video`` or ``clip``) and how many.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from alabench import stats
from alabench.errors import UserError
from alabench.vocabulary import FRAME_KINDS, INPUTS, METRIC

COLUMNS = ["seed", "video", "clip", "k", "kind", "input_blurry", "psnr", "ssim", "lpips"]


class EvaluationError(UserError, RuntimeError):
    """An evaluation that cannot be made or read; names the file or the method."""


def summarize(frames: pd.DataFrame, psnr_cap: float, bootstrap: int, confidence: float, seed: int) -> dict[str, Any]:
    """The averages of ``summary.json`` (see the module docstring) from a frames.csv table."""
    scores = stats.UnitScores.from_frames(frames, psnr_cap)
    resamples = stats.Resamples.draw(len(scores.units), len(scores.seeds), bootstrap, seed)
    over = frames["psnr"] > psnr_cap
    by_input = {}
    for name, flag in INPUTS.items():
        part = frames[frames["input_blurry"] == flag]
        by_input[name] = {"frames": {kind: int(part["kind"].isin(k).sum()) for kind, k in FRAME_KINDS.items()},
                          **stats.averages(stats.UnitScores.from_frames(part, psnr_cap, scores.units, scores.seeds),
                                           resamples, confidence)}
    unit = stats.unit_kind(frames)
    return {
        "clips": int(frames["clip"].nunique()),
        "units": {"unit": unit, "count": len(scores.units)},
        "seeds": [s for s in scores.seeds if s != stats.NO_SEED],
        "frames": {kind: int(frames["kind"].isin(k).sum()) for kind, k in FRAME_KINDS.items()},
        "psnr_cap": psnr_cap,
        "psnr_capped": {kind: int((over & frames["kind"].isin(k)).sum()) for kind, k in FRAME_KINDS.items()},
        "bootstrap": {"resamples": bootstrap, "confidence": confidence, "seed": seed, "unit": unit,
                      "seeds_resampled": len(scores.seeds) > 1},
        "averages": stats.averages(scores, resamples, confidence),
        "by_input": by_input,
    }


def joint_line(summary: dict[str, Any], convention: str) -> str:
    """The joint numbers of a summary in one line, in ``convention`` (the protocol's headline,
    ``alabench.vocabulary.headline_convention``, as the report's tables), with what was capped."""
    joint = {m: METRIC[m].format(summary["averages"][convention]["joint"][m]["mean"]) for m in METRIC}
    return (f"joint PSNR {joint['psnr']} dB, SSIM {joint['ssim']}, LPIPS {joint['lpips']} ({convention}; "
            f"{summary['psnr_capped']['joint']} frames capped at {summary['psnr_cap']:g} dB)")


def flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The averages as flat names for MLflow: ``per_clip.joint.psnr`` and the like (means only)."""
    out = {f"{convention}.{kind}.{metric}": value["mean"]
           for convention, kinds in summary.get("averages", {}).items()
           for kind, metrics in kinds.items() for metric, value in metrics.items()}
    for key in ("seconds_per_frame", "parameters"):
        if key in summary:
            out[key] = summary[key]
    out.update({f"psnr_capped.{kind}": n for kind, n in summary.get("psnr_capped", {}).items()})
    return {k: float(v) for k, v in out.items() if v is not None}


def read_frames(path: Path) -> pd.DataFrame:
    """A frames.csv back as a table (``inf`` PSNR included); names the file if its columns are wrong."""
    frames = pd.read_csv(path, dtype={"clip": str})
    if list(frames.columns) != COLUMNS:
        raise EvaluationError(f"{path}: columns {list(frames.columns)}, expected {COLUMNS}; rerun its evaluate stage")
    return frames
