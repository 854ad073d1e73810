"""Mechanism probes: does a trained method use the parts it says it is made of?

A method's module may declare knock-outs of its own parts (``alabench.methods.Knockouts``: ALANet's
latent, cross- and self-attention, gates). Each knock-out is scored exactly like a method: the same
clips and frames, the same code (``alabench.evaluation.evaluate_method``, every training seed, the
knock-out active from the moment each seed's model is built), and compared with the intact method,
paired per test unit and seed: its *cost* is intact − knocked out, in PSNR dB, per task (deblur,
interp, joint) and averaging convention, with the bootstrap interval of ``alabench.stats.difference``
(the evaluation's own resamples, seed and confidence). A positive cost means the part helps; a cost
whose interval sits within ±0.1 dB of zero means the trained method does not use it.

Under `mixed` the deblurring cost is also given on the sharp and the blurry inputs apart
(``deblur_cost_by_input``): a part can help one kind and harm the other.

Written beside the method's results (``alabench.layout``): ``probes.json`` (the costs) and
``probes/<knock-out>.csv`` (each knock-out's frame scores, frames.csv's columns), from which every
cost can be recomputed.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from alabench import stats
from alabench.config import EvaluateParams, Params
from alabench.datasets import TestClip
from alabench.errors import disk_full_names
from alabench.evaluation import evaluate_method
from alabench.summary import COLUMNS
from alabench.frames import atomic_dir, atomic_write_text
from alabench.layout import PROBE_FRAMES, PROBES, probe_frames
from alabench.methods import Method, MethodFailed, build_model, knockouts_of
from alabench.vocabulary import INPUTS, KINDS

METRIC = "psnr"


@dataclass
class Probe:
    """One knock-out scored: its frame scores (None when the knocked-out method failed) and what the
    evaluation summarised of them."""

    name: str
    description: str
    frames: pd.DataFrame | None
    summary: dict[str, Any]
    error: str | None = None


def declared(method: Method, params: Params) -> dict[str, str]:
    """The knock-outs a method is probed with: those its module declares, if it trains ({} otherwise:
    an untrained method's parts are not learnt, and a cascade's are its components' own)."""
    return knockouts_of(build_model(method, params)) if method.trains else {}


def knocked_out(method: Method, name: str, stack: ExitStack) -> Method:
    """``method`` whose every built module has knock-out ``name`` active until ``stack`` closes: the
    evaluation then loads each seed's weights into it and scores it as it scores any method."""

    def build(params: Params, options: Any) -> Any:
        model = method.build(params, options)
        stack.enter_context(model.knockout(name))
        return model

    return dataclasses.replace(method, build=build)


def run_probes(method: Method, params: Params, dataset: str, clips: list[TestClip], device: str,
               trained_on: str | None = None) -> list[Probe]:
    """Score every knock-out ``method`` declares on ``clips``, one evaluation pass each; a knock-out
    that makes the method fail (MethodFailed) is recorded with its error, the others still run."""
    probes = []
    for name, description in declared(method, params).items():
        summary: dict[str, Any] = {"device": device, "checkpoints": []}
        try:
            with ExitStack() as stack:
                scored = evaluate_method(knocked_out(method, name, stack), params, dataset, clips, summary, trained_on,
                                         psnr_only=True)
        except MethodFailed as err:
            probes.append(Probe(name, description, None, summary, str(err)))
            continue
        probes.append(Probe(name, description, scored.frames, summary))
    return probes


def _cost(intact: stats.UnitScores, knocked: stats.UnitScores, convention: str, kind: str,
          cfg: EvaluateParams) -> dict[str, Any]:
    """intact − knocked out, PSNR, paired per unit and seed, with the evaluation's own bootstrap."""
    return stats.difference(intact, knocked, convention, kind, METRIC, cfg.bootstrap, cfg.confidence,
                            cfg.seed).as_dict()


def costs(intact: pd.DataFrame, knocked: pd.DataFrame, cfg: EvaluateParams) -> dict[str, dict[str, Any]]:
    """{convention: {kind: paired difference intact − knocked out}} of PSNR, from two frames tables."""
    a, b = (stats.UnitScores.from_frames(f, cfg.psnr_cap) for f in (intact, knocked))
    return {convention: {kind: _cost(a, b, convention, kind, cfg) for kind in KINDS} for convention in stats.CONVENTIONS}


def deblur_costs_by_input(intact: pd.DataFrame, knocked: pd.DataFrame, cfg: EvaluateParams) -> dict[str, Any]:
    """{input kind: {convention: deblurring cost}} on the sharp and the blurry inputs apart, laid out on
    the whole table's units and seeds; {} unless both kinds are there (`mixed`). A part can help the
    blurry inputs and harm the sharp ones: the joint cost alone would hide both."""
    whole = stats.UnitScores.from_frames(intact, cfg.psnr_cap)
    parts = {name: [f[f["input_blurry"] == flag] for f in (intact, knocked)] for name, flag in INPUTS.items()}
    if any(a.empty for a, _ in parts.values()):
        return {}
    out = {}
    for name, (a, b) in parts.items():
        a, b = (stats.UnitScores.from_frames(f, cfg.psnr_cap, whole.units, whole.seeds) for f in (a, b))
        out[name] = {convention: _cost(a, b, convention, "deblur", cfg) for convention in stats.CONVENTIONS}
    return out


def probes_record(probes: list[Probe], intact: pd.DataFrame, cfg: EvaluateParams, result_dir: Path,
                  identity: dict[str, str]) -> dict[str, Any]:
    """probes.json's content: ``identity`` (method, dataset, protocol), the bootstrap settings, and per
    knock-out its description, status, frames file, the knocked-out method's PSNR means, its costs and
    (under `mixed`) its deblurring cost on sharp and blurry inputs apart."""
    out: dict[str, Any] = {**identity, "metric": METRIC,
                           "cost": "intact − knocked out, paired per unit and seed; positive: the part helps",
                           "bootstrap": {"resamples": cfg.bootstrap, "confidence": cfg.confidence, "seed": cfg.seed},
                           "knockouts": {}}
    for probe in probes:
        entry: dict[str, Any] = {"description": probe.description, "status": "failed" if probe.error else "ok",
                                 "error": probe.error}
        if probe.frames is not None:
            averages = probe.summary.get("averages", {})
            entry.update(frames=str(probe_frames(result_dir, probe.name)),
                         seconds=probe.summary.get("seconds"),
                         psnr={c: {k: averages[c][k][METRIC]["mean"] for k in KINDS} for c in averages},
                         cost=costs(intact, probe.frames, cfg),
                         deblur_cost_by_input=deblur_costs_by_input(intact, probe.frames, cfg))
        out["knockouts"][probe.name] = entry
    return out


def write_probes(result_dir: Path, probes: list[Probe], intact: pd.DataFrame, cfg: EvaluateParams,
                 identity: dict[str, str]) -> Path:
    """``result_dir``/probes/ (each knock-out's frames, swapped in whole), then probes.json (atomic):
    the evaluate stage calls it after writing the results folder, which removed any earlier probes."""
    result_dir = Path(result_dir)
    with disk_full_names(result_dir), atomic_dir(result_dir / PROBE_FRAMES) as tmp:
        for probe in probes:
            if probe.frames is not None:
                probe.frames[COLUMNS].to_csv(tmp / probe_frames(Path(), probe.name).name, index=False,
                                             float_format="%.6f")
    path = result_dir / PROBES
    record = probes_record(probes, intact, cfg, result_dir, identity)
    with disk_full_names(path):
        atomic_write_text(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path
