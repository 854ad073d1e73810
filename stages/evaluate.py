"""Stage `evaluate@<method>-<dataset>-<protocol>`: one method on one prepared test protocol.

Writes results/<dataset>/<protocol>/<method>/{frames.csv, summary.json, samples/}
(docs/evaluation.md) and logs the run to MLflow. A trainable method is loaded from the checkpoint
of each seed in ``train.seeds`` (written by the `train` stages) and scored once per seed; if its
module declares knock-outs, each is scored too and its cost written to probes.json and probes/
in the same folder (alabench.probes). A method
that raises or breaks the output contract gets ``status: failed`` and its error in summary.json;
the stage then exits 1 only when ``evaluate.strict`` is true.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from alabench.cascade import find_cascade
from alabench.cli import stage_main
from alabench.config import ParamError, Params, load_params
from alabench.datasets import iter_test_clips
from alabench.evaluation import Scored, evaluate_method, record
from alabench.summary import COLUMNS, EvaluationError, joint_line
from alabench.layout import MANIFEST, prepared_dir, result_dir
from alabench.methods import Method, MethodFailed, discover, get_method
from alabench.probes import run_probes, write_probes
from alabench.released import as_configured, file_sha256, weights_of
from alabench.threads import configure_threads
from alabench.vocabulary import headline_convention

log = logging.getLogger("stages.evaluate")


def checked_method(params: Params, name: str, dataset: str, protocol: str, trained_on: str | None = None) -> Method:
    """The method, after checking that params.yaml asks for this evaluation (``trained_on``: the data
    set of its checkpoints, when an evaluate.transfer pair scores it on another); a method file that
    does not load raises MethodFailed (contained like any other failure of the method)."""
    if protocol not in params.evaluate.protocols:
        raise ParamError(f"evaluate on {protocol}: not in evaluate.protocols {list(params.evaluate.protocols)}")
    found = discover()
    if f"{name}/" in found.rejected:
        raise MethodFailed(f"baselines/{name}/ does not load: {found.rejected[f'{name}/']}")
    cascade = find_cascade(name, params, found, dataset)  # an evaluate.cascades entry (alabench.cascade)
    if cascade is not None:
        return cascade
    method = as_configured(get_method(name, found), params)  # methods.<m>.weights: released, untrained here
    key, listed = ("train.methods", params.train.methods) if method.trains else ("evaluate.methods", params.evaluate.methods)
    if name not in listed:
        raise ParamError(f"evaluate {name}: it {'trains' if method.trains else 'does not train'}, so it must "
                         f"be listed in {key} {list(listed)}")
    if trained_on is not None:
        pairs = [(p.test, p.train) for p in params.evaluate.transfer]
        if not method.trains or (dataset, trained_on) not in pairs:
            raise ParamError(f"evaluate {name} on {dataset} trained on {trained_on}: not a pair of evaluate.transfer "
                             f"{[dict(test=t, train=r) for t, r in pairs]} (or {name} does not train)")
        return method
    key, datasets = ("train.datasets", params.train.datasets) if method.trains else ("blur.datasets", params.blur.datasets)
    if dataset not in datasets:
        raise ParamError(f"evaluate {name} on {dataset}: not in {key} {list(datasets)}")
    return method


def main(name: str, dataset: str, protocol: str, trained_on: str | None = None) -> None:
    params = load_params()
    cfg = params.evaluate
    threads = configure_threads(cfg.threads)
    protocol_dir = prepared_dir(dataset, protocol)
    clips = list(iter_test_clips(protocol_dir))
    if not clips:
        raise EvaluationError(f"{protocol_dir / MANIFEST}: no test clips; run `dvc repro`")
    summary: dict[str, Any] = {
        "status": "ok", "error": None, "method": name, "dataset": dataset, "protocol": protocol,
        "device": "cuda" if torch.cuda.is_available() else "cpu", "threads": threads,
        "checkpoints": [],
    }
    try:
        method = checked_method(params, name, dataset, protocol, trained_on)
        released = weights_of(method.options_from(params))
        if released and Path(released).is_file():  # a file DVC does not track: its digest is kept (absent: build says)
            summary["released_weights"] = {"path": released, "sha256": file_sha256(released)}
        scored = evaluate_method(method, params, dataset, clips, summary, trained_on)
    except MethodFailed as err:
        log.error("%s failed on %s/%s: %s", name, dataset, protocol, err)
        summary.update(status="failed", error=str(err))
        scored = Scored(pd.DataFrame(columns=COLUMNS), 0.0)
    tags = {"stage": "evaluate", "method": name, "protocol": protocol, "status": summary["status"]}
    run_params = {"method": name, "dataset": dataset, "protocol": protocol, "evaluate": asdict(cfg),
                  "options": summary.get("options", {}), "checkpoints": summary["checkpoints"]}
    out_dir = result_dir(dataset, protocol, name)
    record(out_dir, scored, summary, run_params, tags)
    if summary["status"] == "failed":
        if cfg.strict:
            raise EvaluationError(f"{name} failed on {dataset}/{protocol} (evaluate.strict is true): {summary['error']}")
        return
    probes = run_probes(method, params, dataset, clips, summary["device"], trained_on)
    if probes:
        write_probes(out_dir, probes, scored.frames, cfg, {"method": name, "dataset": dataset, "protocol": protocol})
        log.info("%s on %s/%s: %d knock-out(s) probed", name, dataset, protocol, len(probes))
    log.info("%s on %s/%s: %s, %.4f s/frame", name, dataset, protocol,
             joint_line(summary, headline_convention(protocol, params.report)), summary["seconds_per_frame"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--trained-on", default=None, help="the data set of the checkpoints (evaluate.transfer)")
    args = parser.parse_args()
    stage_main("evaluate", lambda: main(args.method, args.dataset, args.protocol, args.trained_on))
