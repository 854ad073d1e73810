"""Evaluation: score every output frame of a method on a prepared test protocol, then summarise
(:mod:`alabench.summary`: what ``frames.csv`` and ``summary.json`` hold) and record both."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from alabench.config import Params
from alabench.datasets import TestClip, to_tensor
from alabench.errors import disk_full_names
from alabench.frames import atomic_dir, write_png
from alabench.inference import ClipRunner
from alabench.layout import FRAMES, SAMPLES, SAMPLES_CSV, SUMMARY, checkpoint
from alabench.methods import (
    Method,
    build_model,
    load_weights,
    parameter_count,
)
from alabench.metrics import Lpips, psnr_batch, ssim_batch, to_uint8
from alabench.summary import COLUMNS, EvaluationError, flat_metrics, summarize
from alabench.tracking import mlflow_run


@dataclass
class Sample:
    """One saved output frame and the paths the report shows beside it (relative to the repo root)."""

    clip: str
    k: int
    kind: str
    image: np.ndarray  # (H, W, 3) uint8
    inputs: list[str]  # the input(s) it was made from
    target: str


@dataclass
class ClipFrames:
    """One clip's outputs as they are scored, whoever made them (a model here, or a folder of PNGs):
    ``(kind, k, (H, W, 3) uint8 frame)`` one at a time, ``kind`` deblur (input k) or interp (k, k+1)."""

    clip: TestClip
    frames: Iterable[tuple[str, int, np.ndarray]]


@dataclass
class Scored:
    frames: pd.DataFrame  # COLUMNS, one row per output frame
    seconds: float  # in the method's forward passes
    samples: list[Sample] = field(default_factory=list)
    # per deblurred frame whose input was sharp (its own ground truth): mean |output - input|, grey levels
    sharp_change: list[float] = field(default_factory=list)


def score_frame(clip: TestClip, kind: str, k: int, output: np.ndarray, lpips: Lpips | None) -> dict[str, Any]:
    """The frames.csv row of one (H, W, 3) uint8 output: input k deblurred, or the frame between k and k+1
    (PSNR alone, SSIM and LPIPS left NaN, where ``lpips`` is None: a knock-out's cost is in PSNR)."""
    target = (clip.gt_deblur if kind == "deblur" else clip.gt_interp)[k][None]
    blurry = clip.blurry[k] if kind == "deblur" else clip.blurry[k] | clip.blurry[k + 1]
    output = output[None]
    return {"seed": "", "video": clip.video, "clip": clip.name, "k": k, "kind": kind, "input_blurry": int(blurry),
            "psnr": float(psnr_batch(output, target)[0]),
            "ssim": float(ssim_batch(output, target)[0]) if lpips is not None else np.nan,
            "lpips": float(lpips(output, target)[0]) if lpips is not None else np.nan}


def sample_positions(clips: list[str], inputs_per_clip: list[int], count: int) -> set[tuple[str, int]]:
    """``count`` (clip, k) positions spread evenly over all the inputs that have an interpolation after them."""
    positions = [(name, k) for name, n in zip(clips, inputs_per_clip) for k in range(n - 1)]
    if not positions or count == 0:
        return set()
    return {positions[i] for i in np.linspace(0, len(positions) - 1, min(count, len(positions))).round().astype(int)}


def viewer_positions(clips: list[str], inputs_per_clip: list[int], count: int) -> set[tuple[str, int]]:
    """Every (clip, k) of the first ``count`` clips: whole clips kept for the report's viewer."""
    return {(name, k) for name, n in list(zip(clips, inputs_per_clip))[:count] for k in range(n)}


def score_outputs(outputs: Iterable[ClipFrames], lpips: Lpips | None,
                  samples: set[tuple[str, int]] = frozenset()) -> Scored:
    """Score each output frame as it comes, clip by clip: the one scoring path of model and folder
    methods alike. ``seconds`` is left at 0 for the caller that timed the method."""
    rows, saved, sharp_change = [], [], []
    for out in outputs:
        clip = out.clip
        keep = {k for name, k in samples if name == clip.name}
        scored = []
        for kind, k, image in out.frames:
            scored.append(score_frame(clip, kind, k, image, lpips))
            if kind == "deblur" and not clip.blurry[k]:  # a sharp input is its own ground truth
                sharp_change.append(float(np.abs(image.astype(np.int16) - clip.gt_deblur[k].astype(np.int16)).mean()))
            if k in keep:
                inputs = clip.input_paths[k:k + 1] if kind == "deblur" else clip.input_paths[k:k + 2]
                target = (clip.gt_deblur_paths if kind == "deblur" else clip.gt_interp_paths)[k]
                saved.append(Sample(clip.name, k, kind, image, inputs, target))
        rows += sorted(scored, key=lambda row: (row["kind"] != "deblur", row["k"]))  # deblur rows, then interp
    return Scored(pd.DataFrame(rows, columns=COLUMNS), 0.0, saved, sharp_change)


def model_outputs(runner: ClipRunner, clips: Iterable[TestClip]) -> Iterator[ClipFrames]:
    """The runner's outputs for each clip, rounded to uint8; a clip is read one frame at a time and never held."""
    for clip in clips:
        frames = runner.run(to_tensor(f) for f in clip.inputs)
        yield ClipFrames(clip, ((kind, k, to_uint8(frame)) for kind, k, frame in frames))


def evaluate_clips(model: nn.Module, clips: Iterable[TestClip], lpips: Lpips | None, batch: int,
                   device: torch.device | str = "cpu", samples: set[tuple[str, int]] = frozenset(),
                   autocast: torch.dtype | None = None) -> Scored:
    """Run ``model`` over every clip (``alabench.inference.ClipRunner``) and score each output frame."""
    runner = ClipRunner(model, batch, device, autocast=autocast)
    scored = score_outputs(model_outputs(runner, clips), lpips, samples)
    scored.seconds = runner.seconds
    return scored


checkpoint_path = checkpoint  # the name other modules' tests import (alabench.layout.checkpoint)


def evaluate_method(method: Method, params: Params, dataset: str, clips: list[TestClip],
                    summary: dict[str, Any], trained_on: str | None = None, psnr_only: bool = False) -> Scored:
    """Build ``method`` (once per training seed, with that seed's weights from ``trained_on`` or
    ``dataset``, if it trains), score it on ``clips`` and fill ``summary`` (model facts, speed,
    averages). Whatever the method's own code does wrong comes out as MethodFailed; ``summary``
    then holds what was known before. ``psnr_only``: no SSIM, LPIPS or saved samples (knock-outs)."""
    cfg = params.evaluate
    options = method.options_from(params)
    summary.update(tasks=sorted(method.tasks), trains=method.trains, description=method.description,
                   options=asdict(options) if options is not None else {})
    device = torch.device(summary["device"])
    seeds: list[int | None] = list(params.train.seeds) if method.trains or method.uses else [None]
    weights_from = trained_on or dataset  # the data set whose checkpoints are loaded (evaluate.transfer)
    trained = ([method.name] if method.trains else []) + list(method.uses)  # whose checkpoints are loaded
    if trained:
        summary.update(trained_on=weights_from,
                       checkpoints=[str(checkpoint(weights_from, name, s)) for name in trained for s in seeds])
    names, lengths = [c.name for c in clips], [len(c.inputs) for c in clips]
    positions = set() if psnr_only else (sample_positions(names, lengths, cfg.samples)
                                         | viewer_positions(names, lengths, cfg.viewer_clips))
    summary["precision"] = cfg.precision
    autocast = torch.bfloat16 if cfg.precision == "bfloat16" else None
    lpips = None if psnr_only else Lpips(device=device)
    runs = []
    for i, seed in enumerate(seeds):
        torch.manual_seed(cfg.seed)
        model = build_model(method, params)
        if seed is not None and method.trains:
            load_weights(model, method.name, checkpoint(weights_from, method.name, seed))
        for part in method.uses if seed is not None and not method.trains else ():  # a cascade's components,
            load_weights(model.parts[part], part, checkpoint(weights_from, part, seed))  # same seed (a tuned
            # cascade's own checkpoint holds both parts, the frozen deblurrer as its checkpoint has it)
        # channels-last weights: every method ran as fast or faster so on this CPU (bench/inference.py)
        model = model.to(device, memory_format=torch.channels_last).eval()
        summary.update(parameters=parameter_count(model), window=model.window)
        scored = evaluate_clips(model, clips, lpips, cfg.batch, device, positions if i == 0 else set(), autocast)
        scored.frames["seed"] = "" if seed is None else seed
        runs.append(scored)
    scored = Scored(pd.concat([r.frames for r in runs], ignore_index=True), sum(r.seconds for r in runs),
                    runs[0].samples, [c for r in runs for c in r.sharp_change])
    summary.update(seconds=round(scored.seconds, 4), seconds_per_frame=round(scored.seconds / len(scored.frames), 6))
    summary.update(summarize(scored.frames, cfg.psnr_cap, cfg.bootstrap, cfg.confidence, cfg.seed))
    if scored.sharp_change:  # the paper's premise: a sharp input should come back unchanged
        summary["by_input"]["sharp"]["mean_abs_change"] = round(float(np.mean(scored.sharp_change)), 4)
    return scored


# --------------------------------------------------------------------------------------------
# Files.


def write_results(out_dir: Path, frames: pd.DataFrame, summary: dict[str, Any], samples: list[Sample]) -> None:
    """``out_dir``/{frames.csv, summary.json, samples/} written whole or not at all: into a temporary
    sibling folder that then replaces ``out_dir``, so a full disk (DiskFull) or a kill midway leaves
    the previous results whole."""
    out_dir = Path(out_dir)
    with disk_full_names(out_dir), atomic_dir(out_dir) as tmp:
        frames[COLUMNS].to_csv(tmp / FRAMES, index=False, float_format="%.6f")
        (tmp / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
        (tmp / SAMPLES).mkdir()
        rows = []
        for s in samples:
            name = f"{s.clip}_{s.k:03d}_{s.kind}.png"
            write_png(tmp / SAMPLES / name, s.image)
            rows.append({"clip": s.clip, "k": s.k, "kind": s.kind, "output": str(out_dir / SAMPLES / name),
                         "inputs": " ".join(s.inputs), "target": s.target})
        pd.DataFrame(rows, columns=["clip", "k", "kind", "output", "inputs", "target"]).to_csv(
            tmp / SAMPLES / SAMPLES_CSV, index=False)


def record(out_dir: Path, scored: Scored, summary: dict[str, Any], run_params: dict[str, Any],
           tags: dict[str, str]) -> None:
    """Write a run's results (``write_results``) and log it to MLflow as ``evaluate <method> <protocol>``
    with its means and both files: the one ending of `evaluate` and `score` alike."""
    write_results(out_dir, scored.frames, summary, scored.samples)
    name, dataset, protocol = summary["method"], summary["dataset"], summary["protocol"]
    with mlflow_run(dataset, f"evaluate {name} {protocol}", run_params, tags) as mlflow:
        mlflow.log_metrics(flat_metrics(summary), 0)
        mlflow.log_artifact(Path(out_dir) / SUMMARY)
        mlflow.log_artifact(Path(out_dir) / FRAMES)
