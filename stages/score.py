"""`python -m stages.score DIR --dataset D --protocol P [--method NAME] [--out OUT]`: score a folder
of outputs made elsewhere exactly as `evaluate` scores a method, and print its table.
`python -m stages.score --entry KEY`: the same for the entry KEY of ``evaluate.folders``.

Writes OUT = {frames.csv, summary.json, samples/} and logs the run to MLflow like `evaluate`;
nothing is written when a check fails. OUT defaults to outside/D/P/NAME (NAME: the folder's name):
git-ignored, not a DVC output, read by the report and marked there as scored by hand, so a quick
score never passes for a result of `dvc repro`. ``--entry KEY`` is the command of the DVC stage
`evaluate_folder@<key>` (one per entry of ``evaluate.folders``): it reads the entry's folder, data
set, protocol and method from params.yaml and writes results/D/P/NAME, the stage's output (the
folder scored is its dependency, so changing an output reruns that evaluation alone). The path
reaches this stage as data, never as a word of the stage's shell command: a folder named
``my outputs`` or ``$(...)`` is scored as the folder it names.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from alabench.vocabulary import PROTOCOLS
from alabench.cli import stage_main
from alabench.config import FolderParams, ParamError, Params, load_params
from alabench.evaluation import record
from alabench.layout import OUTSIDE, result_dir
from alabench.metrics import Lpips
from alabench.names import check_name
from alabench.submission import evaluate_folder, summary_table
from alabench.threads import configure_threads
from alabench.vocabulary import headline_convention

log = logging.getLogger("stages.score")


def folder_entry(params: Params, key: str) -> FolderParams:
    """The entry ``key`` of ``evaluate.folders`` (validated with the rest of params.yaml)."""
    if key not in params.evaluate.folders:
        raise ParamError(f"evaluate.folders has no entry {key!r}; its entries: "
                         f"{', '.join(params.evaluate.folders) or 'none'}")
    return params.evaluate.folders[key]


def main(folder: Path | None, dataset: str | None, protocol: str | None, method: str | None, out: Path | None,
         entry: str | None = None) -> None:
    params = load_params()
    cfg = params.evaluate
    if entry is not None:  # the evaluate_folder@<entry> stage: every argument from params.yaml
        supplied = folder_entry(params, entry)
        folder, dataset, protocol, method = Path(supplied.path), supplied.dataset, supplied.protocol, supplied.method
        out = result_dir(dataset, protocol, method)
    name = method or Path(folder).resolve().name
    check_name("--dataset", dataset)  # a folder of outside/ ...
    check_name("--method (default: the folder's name)", name)  # ... and of results/
    if name in params.train.methods or name in params.evaluate.methods:
        raise ParamError(f"method name {name!r} is a method of this repository (train.methods / evaluate.methods); "
                         "pass another --method, so that its results are not overwritten")
    if out is None and name in {f.method for f in cfg.folders.values()}:
        raise ParamError(f"method name {name!r} is scored by the pipeline (evaluate.folders); pass another "
                         "--method, so that the report does not show two results under one name")
    out = out or result_dir(dataset, protocol, name, base=OUTSIDE)
    configure_threads(cfg.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    summary: dict[str, Any] = {"status": "ok", "error": None, "method": name, "dataset": dataset,
                               "protocol": protocol, "checkpoint": None}
    scored = evaluate_folder(folder, dataset, protocol, cfg, Lpips(device=device), summary)
    tags = {"stage": "score", "method": name, "protocol": protocol, "status": "ok"}
    run_params = {"method": name, "dataset": dataset, "protocol": protocol, "evaluate": asdict(cfg),
                  "outputs_supplied": summary["outputs_supplied"]}
    record(out, scored, summary, run_params, tags)
    log.info("wrote %s", out)
    print(summary_table(summary, headline_convention(protocol, params.report)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", nargs="?", type=Path, help="the outputs: <clip>/deblur_XXXXX.png, "
                                                             "<clip>/interp_XXXXX.png, protocol.json")
    parser.add_argument("--entry", metavar="KEY", help="score the entry KEY of evaluate.folders in params.yaml (its "
                        "path, data set, protocol and method) into results/<dataset>/<protocol>/<method>: the command "
                        "of the DVC stage evaluate_folder@KEY; no other argument")
    parser.add_argument("--dataset")
    parser.add_argument("--protocol", choices=PROTOCOLS)
    parser.add_argument("--method", help="its name in results/ and the report (default: the folder's name)")
    parser.add_argument("--out", type=Path, help="where to write the scores (default: outside/<dataset>/<protocol>/"
                                                 "<method>, git-ignored, shown in the report marked 'scored by hand')")
    args = parser.parse_args()
    given = [v is not None for v in (args.folder, args.dataset, args.protocol, args.method, args.out)]
    if args.entry is not None and any(given):
        parser.error("--entry KEY takes everything from params.yaml: give no folder, --dataset, --protocol, "
                     "--method or --out with it")
    if args.entry is None and not all(given[:3]):
        parser.error("give the folder, --dataset and --protocol (or --entry KEY)")
    stage_main("score", lambda: main(args.folder, args.dataset, args.protocol, args.method, args.out, args.entry))
