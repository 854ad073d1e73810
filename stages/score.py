"""`python -m stages.score DIR --dataset D --protocol P [--method NAME] [--out OUT]`: score a folder
of outputs made elsewhere exactly as `evaluate` scores a method, and print its table.

Writes OUT = {frames.csv, summary.json, samples/} and logs the run to MLflow like `evaluate`;
nothing is written when a check fails. OUT defaults to outside/D/P/NAME (NAME: the folder's name):
git-ignored, not a DVC output, read by the report and marked there as scored by hand, so a quick
score never passes for a result of `dvc repro`. Also the command of the DVC stage
`evaluate_folder@<key>` (one per entry of ``evaluate.folders``), which passes
``--out results/D/P/NAME``: that folder is the stage's output and the folder scored its
dependency, so changing an output reruns that evaluation alone.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from alabench.blur import PROTOCOLS
from alabench.cli import run_stage
from alabench.config import METHOD_NAME, ParamError, load_params
from alabench.evaluation import record
from alabench.report import OUTSIDE
from alabench.metrics import Lpips
from alabench.submission import evaluate_folder, summary_table

log = logging.getLogger("stages.score")


def main(folder: Path, dataset: str, protocol: str, method: str | None, out: Path | None) -> None:
    params = load_params()
    cfg = params.evaluate
    name = method or Path(folder).resolve().name
    if not METHOD_NAME.fullmatch(name):
        raise ParamError(f"method name {name!r}: use lower case letters, digits and _ (pass --method NAME)")
    if name in params.train.methods or name in params.evaluate.methods:
        raise ParamError(f"method name {name!r} is a method of this repository (train.methods / evaluate.methods); "
                         "pass another --method, so that its results are not overwritten")
    if out is None and name in {f.method for f in cfg.folders.values()}:
        raise ParamError(f"method name {name!r} is scored by the pipeline (evaluate.folders); pass another "
                         "--method, so that the report does not show two results under one name")
    out = out or OUTSIDE / dataset / protocol / name
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    summary: dict[str, Any] = {"status": "ok", "error": None, "method": name, "dataset": dataset,
                               "protocol": protocol, "checkpoint": None}
    scored = evaluate_folder(folder, dataset, protocol, cfg, Lpips(device=device), summary)
    tags = {"stage": "score", "method": name, "protocol": protocol, "status": "ok"}
    run_params = {"method": name, "dataset": dataset, "protocol": protocol, "evaluate": asdict(cfg),
                  "outputs_supplied": summary["outputs_supplied"]}
    record(out, scored, summary, run_params, tags)
    log.info("wrote %s", out)
    print(summary_table(summary))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="the outputs: <clip>/deblur_XXXXX.png, <clip>/interp_XXXXX.png, "
                                                  "protocol.json")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--protocol", required=True, choices=PROTOCOLS)
    parser.add_argument("--method", help="its name in results/ and the report (default: the folder's name)")
    parser.add_argument("--out", type=Path, help="where to write the scores (default: outside/<dataset>/<protocol>/"
                                                 "<method>, git-ignored, shown in the report marked 'scored by hand')")
    args = parser.parse_args()
    run_stage("score", lambda: main(args.folder, args.dataset, args.protocol, args.method, args.out))
