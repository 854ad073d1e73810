"""Stage `train@<method>-<dataset>-<seed>`: train one trainable method on a data set's train split
(and stage `tune_cascade@cascade<i>-<dataset>-<seed>`: a cascade's interpolator fine-tuned on its
deblurrer's outputs, `--method cascade_<d>_<i>_tuned`, alabench.cascade).

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

from alabench import layout
from alabench.cli import stage_main
from alabench.config import ParamError, load_params
from alabench.errors import disk_full_names
from alabench.frames import atomic_write_text
from alabench.threads import configure_threads
from alabench.tracking import mlflow_run
from alabench.training import save_checkpoint, setup_distributed, train
from alabench.training_run import prepare_training

log = logging.getLogger("stages.train")


def main(method_name: str, dataset: str, seed: int, stop_after_step: int | None = None) -> None:
    params = load_params()
    tuned = [c.tuned_name for c in params.evaluate.cascades]  # the tune_cascade stage runs this one too
    if ((method_name not in params.train.methods and method_name not in tuned)
            or dataset not in params.train.datasets or seed not in params.train.seeds):
        raise ParamError(f"train {method_name} on {dataset} with seed {seed}: each must be listed in train.methods "
                         f"{list(params.train.methods)} (or be a tuned cascade of evaluate.cascades: {tuned}), "
                         f"train.datasets {list(params.train.datasets)} and train.seeds {list(params.train.seeds)}")
    dist = setup_distributed()
    configure_threads(params.train.threads)
    run = prepare_training(params, method_name, dataset, seed)
    out, report = layout.checkpoint_dir(dataset, method_name, seed), layout.training_dir(dataset, method_name, seed)
    log.info("%s on %s: %d training windows of %d inputs, %d validation windows, %.2fM parameters, %d process(es)",
             method_name, dataset, len(run.train_set), run.train_data.window, len(run.val_set),
             sum(p.numel() for p in run.model.parameters()) / 1e6, dist.world)

    tracking = (mlflow_run(dataset, f"train {method_name}", run.config,
                           {"stage": "train", "method": method_name, "trains": "true", "seed": str(seed)})
                if dist.is_main else nullcontext())
    with tracking as logged:
        history = train(run.model, run.loss, run.train_set, run.val_set, run.train, dist,
                        layout.train_state(dataset, method_name, seed), run.config, seed=seed,
                        on_epoch=(lambda row: logged.log_metrics(row, int(row["epoch"]))) if logged else lambda row: None,
                        stop_after_step=stop_after_step)
        if not dist.is_main or stop_after_step is not None:
            return
        save_checkpoint(out / layout.MODEL, {"method": method_name, "model": run.model.state_dict(),
                                             "config": run.config, "history": history})
        final = history[-1] if history else {}
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(final))
        writer.writeheader()
        writer.writerows(history)
        with disk_full_names(report):
            atomic_write_text(report / layout.TRAIN_METRICS, json.dumps(final, indent=2) + "\n")
            atomic_write_text(report / layout.HISTORY, buffer.getvalue())
        logged.log_artifact(out / layout.MODEL)
    log.info("final validation: %s", {k: round(v, 4) for k, v in final.items()})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--seed", type=int, required=True, help="one of train.seeds")
    parser.add_argument("--stop-after-step", type=int, default=None, help="end early, as a kill would (tests)")
    args = parser.parse_args()
    stage_main("train", lambda: main(args.method, args.dataset, args.seed, args.stop_after_step))
