"""BIN's two test protocols on the same trained checkpoints: a fresh window per output (its authors'
test code, the `evaluate` stage's default) against the state carried along the whole clip
(``methods.bin.carry_state: true``).

Reads the results the pipeline already wrote (``results/<dataset>/<protocol>/{bin,blurry_input}/
frames.csv``), scores the checkpoints of every seed once more with the state carried, and prints,
under each protocol's headline convention, the paired differences (95 % intervals over the data
set's independent units and the seeds): each mode against ``blurry_input``, and carried − fresh.
Run it in a workspace holding a finished run, e.g. the cpu-long experiment after
``dvc exp apply cpu-long`` (docs/reproducing.md):

    .venv/bin/python bench/bin_state_modes.py [--dataset synth] [--protocols all_blurry mixed] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from alabench.config import Params, load_params
from alabench.datasets import iter_test_clips
from alabench.evaluation import evaluate_method
from alabench.summary import read_frames
from alabench.layout import FRAMES, SUMMARY, prepared_dir, result_dir
from alabench.methods import get_method, with_method_options
from alabench.stats import UnitScores, difference
from alabench.vocabulary import headline_convention

KINDS = ("joint", "deblur", "interp")


def carried_frames(params: Params, dataset: str, protocol: str) -> pd.DataFrame:
    """Every seed's bin checkpoint scored with the state carried along each test clip (PSNR only)."""
    carried = with_method_options(params, "bin", carry_state=True)
    clips = list(iter_test_clips(prepared_dir(dataset, protocol)))
    summary: dict[str, Any] = {"device": "cuda" if torch.cuda.is_available() else "cpu"}
    return evaluate_method(get_method("bin"), carried, dataset, clips, summary, psnr_only=True).frames


def fresh_frames(dataset: str, protocol: str) -> pd.DataFrame:
    """The pipeline's bin result, after checking that it was scored a fresh window per output."""
    folder = result_dir(dataset, protocol, "bin")
    summary = json.loads((folder / SUMMARY).read_text())
    if summary.get("options", {}).get("carry_state", False):
        raise SystemExit(f"{folder / SUMMARY}: this bin result carried its state; run the pipeline with "
                         "methods.bin.carry_state false (the default) first")
    return read_frames(folder / FRAMES)


def compare(params: Params, dataset: str, protocol: str) -> dict[str, Any]:
    """Paired differences of both modes to blurry_input, and between the modes, task by task."""
    cfg = params.evaluate
    convention = headline_convention(protocol, params.report)
    cap = cfg.psnr_cap
    scores = {"fresh": UnitScores.from_frames(fresh_frames(dataset, protocol), cap),
              "carried": UnitScores.from_frames(carried_frames(params, dataset, protocol), cap),
              "blurry_input": UnitScores.from_frames(read_frames(result_dir(dataset, protocol, "blurry_input")
                                                                 / FRAMES), cap)}
    pairs = {"fresh - blurry_input": ("fresh", "blurry_input"), "carried - blurry_input": ("carried", "blurry_input"),
             "carried - fresh": ("carried", "fresh")}
    out: dict[str, Any] = {"convention": convention}
    for label, (a, b) in pairs.items():
        out[label] = {kind: difference(scores[a], scores[b], convention, kind, "psnr", cfg.bootstrap,
                                       cfg.confidence, cfg.seed).as_dict() for kind in KINDS}
    return out


def table(protocol: str, result: dict[str, Any]) -> str:
    """One protocol's result as a Markdown table (docs/reproducing.md quotes it)."""
    lines = [f"| {protocol} ({result['convention']}), PSNR dB | " + " | ".join(KINDS) + " |",
             "|---" * (len(KINDS) + 1) + "|"]
    for label, by_kind in result.items():
        if label == "convention":
            continue
        cells = [f"{d['mean']:+.2f} [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}]" for d in by_kind.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synth")
    parser.add_argument("--protocols", nargs="+", default=["all_blurry", "mixed"])
    parser.add_argument("--out", type=Path, help="also write the differences as JSON")
    args = parser.parse_args(argv)
    params = load_params()
    results = {protocol: compare(params, args.dataset, protocol) for protocol in args.protocols}
    for protocol, result in results.items():
        print(table(protocol, result), end="\n\n")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
