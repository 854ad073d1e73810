"""Stage `train@<method>-<dataset>-<seed>`: train one trainable method on a data set's train split.

Writes checkpoints/<dataset>/<method>/seed<k>/model.pt (weights, config and history) plus DVC
metrics and plots under training/<dataset>/<method>/seed<k>/; logs to MLflow. Resumable: a killed
run restarts from data/cache/train/<dataset>-<method>-seed<k>.pt when the params and the training
frames are unchanged. Runs under torchrun for DDP.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import torch

from alabench.blur import Eq7
from alabench.cli import run_stage
from alabench.config import ParamError, load_params
from alabench.datasets import (
    ClipCache,
    TrainWindows,
    ValidationWindows,
    split_train_val,
)
from alabench.errors import disk_full_names
from alabench.frames import atomic_write_text, list_clips
from alabench.methods import MethodError, get_method, method_options
from alabench.threads import configure_threads
from alabench.tracking import mlflow_run
from alabench.training import (
    build_loss,
    data_fingerprint,
    method_train_data,
    method_train_params,
    save_checkpoint,
    setup_distributed,
    train,
)

log = logging.getLogger("stages.train")


def main(method_name: str, dataset: str, seed: int, stop_after_step: int | None = None) -> None:
    params = load_params()
    if (method_name not in params.train.methods or dataset not in params.train.datasets
            or seed not in params.train.seeds):
        raise ParamError(f"train {method_name} on {dataset} with seed {seed}: each must be listed in train.methods "
                         f"{list(params.train.methods)}, train.datasets {list(params.train.datasets)} and "
                         f"train.seeds {list(params.train.seeds)}")
    method = get_method(method_name)
    if not method.trains:
        raise MethodError(f"method '{method_name}' does not train; remove it from train.methods")
    dist = setup_distributed()
    configure_threads(params.train.threads)
    torch.manual_seed(seed)
    model = method.build(params)
    options = method_options(params, method_name, method.options) if method.options else None
    cfg, data_cfg = method_train_params(params.train, options), method_train_data(params.train_data, options)

    eq7 = Eq7.from_params(params.blur)
    train_clips, val_clips = split_train_val(list_clips(Path("data/sharp") / dataset / "train"),
                                             params.train_data.val_clips)
    cache = ClipCache(Path("data/cache/clips") / dataset)
    train_set = TrainWindows(train_clips, eq7, data_cfg, cache)
    val_set = ValidationWindows(val_clips, eq7, data_cfg, cache)
    # The lists of methods, data sets and seeds stay out: adding a seed must not void a resume.
    shared = {k: v for k, v in asdict(cfg).items() if k not in ("methods", "datasets", "seeds")}
    config = {"method": method_name, "dataset": dataset, "seed": seed, "train": shared,
              "train_data": asdict(data_cfg), "blur": asdict(params.blur),
              "model": asdict(getattr(model, "config", params.train)), "train_clips": [c.name for c in train_clips],
              "data": data_fingerprint(train_clips + val_clips)}
    out = Path("checkpoints") / dataset / method_name / f"seed{seed}"
    report = Path("training") / dataset / method_name / f"seed{seed}"
    log.info("%s on %s: %d training windows of %d inputs, %d validation windows, %.2fM parameters, %d process(es)",
             method_name, dataset, len(train_set), data_cfg.window, len(val_set),
             sum(p.numel() for p in model.parameters()) / 1e6, dist.world)

    tracking = (mlflow_run(dataset, f"train {method_name}", config,
                           {"stage": "train", "method": method_name, "trains": "true", "seed": str(seed)})
                if dist.is_main else nullcontext())
    with tracking as run:
        history = train(model, build_loss(params, method), train_set, val_set, cfg, dist,
                        Path("data/cache/train") / f"{dataset}-{method_name}-seed{seed}.pt", config, seed=seed,
                        on_epoch=(lambda row: run.log_metrics(row, int(row["epoch"]))) if run else (lambda row: None),
                        stop_after_step=stop_after_step)
        if not dist.is_main or stop_after_step is not None:
            return
        save_checkpoint(out / "model.pt", {"method": method_name, "model": model.state_dict(),
                                           "config": config, "history": history})
        final = history[-1] if history else {}
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(final))
        writer.writeheader()
        writer.writerows(history)
        with disk_full_names(report):
            atomic_write_text(report / "metrics.json", json.dumps(final, indent=2) + "\n")
            atomic_write_text(report / "history.csv", buffer.getvalue())
        run.log_artifact(out / "model.pt")
    log.info("final validation: %s", {k: round(v, 4) for k, v in final.items()})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--seed", type=int, required=True, help="one of train.seeds")
    parser.add_argument("--stop-after-step", type=int, default=None, help="end early, as a kill would (tests)")
    args = parser.parse_args()
    run_stage("train", lambda: main(args.method, args.dataset, args.seed, args.stop_after_step))
