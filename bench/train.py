"""Training speed: float32 against bfloat16, and idle against beside a CPU-bound neighbour.

For every method in `train.methods`, runs the train stage's own run on the synth train split (set up
by the stage's own `alabench.training_run.prepare_training`: the same model, loss, schedule, the
method's own learning rate and window, data order and seed) for the same number of steps (after 3
untimed warm-up steps).

1. **Precision**: `train.precision` float32, then bfloat16 autocast. Prints steps per second of
   each, and the validation PSNR gain over the blurry input after those steps (joint for joint
   methods, interpolation for interpolation-only ones).
2. **Load** (`--compete N`, default 1; 0 skips it): in the precision the train stage uses, steps per
   second idle, then beside N CPU-bound processes this script starts itself (`while True: pass`),
   each time with the thread count `alabench.threads` picks at that moment, as the train stage
   does; prints both, the threads and the slowdown (step time beside / idle; the target is <= 2x).

Needs `dvc repro synth weights` first. The machine may be shared: compare the columns of one run,
and run the load part on an otherwise idle machine (its own competitor is the only load wanted).

    .venv/bin/python bench/train.py [--steps 100] [--threads 0] [--compete 1] [--skip-precision]
                                    [--methods alanet cain]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from alabench.config import Params, load_params
from alabench.threads import configure_threads
from alabench.training import Distributed, autocast_dtype, cpu_has_bf16, train, validate
from alabench.training_run import TrainingRun, prepare_training

WARMUP = 3  # untimed first steps: oneDNN builds its kernels for each new shape and type


def run(params: Params, name: str, precision: str, steps: int,
        seed: int = 0) -> tuple[TrainingRun, float, dict[str, float]]:
    """The train stage's run of ``name`` on synth (``alabench.training_run``: the same model, loss,
    method learning rate and windows), and the steps per second of ``steps`` training steps in
    ``precision`` (after WARMUP untimed ones, which the timed part resumes from) and the validation
    after all of them."""
    prepared = prepare_training(params, name, "synth", seed)
    model, loss, data = prepared.model, prepared.loss, (prepared.train_set, prepared.val_set)
    cfg = dataclasses.replace(prepared.train, precision=precision, checkpoint_every=WARMUP)
    dist = Distributed(0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state.pt"
        train(model, loss, *data, cfg, dist, state, prepared.config, seed=seed, stop_after_step=WARMUP)
        cfg = dataclasses.replace(cfg, checkpoint_every=10**9)  # same fingerprint: the config is the same
        start = time.perf_counter()
        train(model, loss, *data, cfg, dist, state, prepared.config, seed=seed, stop_after_step=WARMUP + steps)
        rate = steps / (time.perf_counter() - start)
    return prepared, rate, validate(model, data[1], dist.device)


@contextmanager
def competitors(count: int) -> Iterator[None]:
    """``count`` CPU-bound processes (a Python busy loop each) for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(1.0)  # running, and visible in /proc/stat when the thread count is chosen
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=0, help="at most this many (0: train.threads); "
                        "alabench.threads may pick fewer, as the train stage does")
    parser.add_argument("--compete", type=int, default=1, help="busy processes beside the load part (0: skip it)")
    parser.add_argument("--skip-precision", action="store_true", help="only the load part")
    parser.add_argument("--methods", nargs="*", default=None, help="default: train.methods")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params()
    requested = args.threads or params.train.threads
    threads = configure_threads(requested)
    device = "cuda" if torch.cuda.is_available() else f"cpu, native bf16: {cpu_has_bf16()}"
    names = args.methods or params.train.methods
    print(f"{args.steps} timed steps (after {WARMUP}) of batch {params.train.batch_size}, crop {params.train_data.crop}, "
          f"{threads} threads ({device})")
    if not args.skip_precision:
        print(f"{'method':<14}{'fp32 steps/s':>13}{'bf16 steps/s':>13}{'speedup':>9}"
              f"{'fp32 gain dB':>14}{'bf16 gain dB':>14}  task")
        for name in names:
            (prepared, r32, v32), (_, r16, v16) = (run(params, name, p, args.steps) for p in ("float32", "bfloat16"))
            task = "joint" if "deblur" in prepared.method.tasks else "interp"
            gain = [v[f"{task}_psnr"] - v[f"input_{task}_psnr"] for v in (v32, v16)]
            print(f"{name:<14}{r32:>13.2f}{r16:>13.2f}{r16 / r32:>8.2f}x{gain[0]:>+14.3f}{gain[1]:>+14.3f}  {task}",
                  flush=True)
    if args.compete:
        dtype = autocast_dtype(params.train.precision, torch.device("cpu"))
        precision = "bfloat16" if dtype is not None else "float32"
        print(f"\nbeside {args.compete} busy process(es), train.precision {params.train.precision} ({precision}), "
              f"at most {requested} threads:")
        print(f"{'method':<14}{'idle threads':>13}{'steps/s':>9}{'busy threads':>14}{'steps/s':>9}{'slowdown':>10}")
        for name in names:
            idle_threads = configure_threads(requested)
            _, idle, _ = run(params, name, precision, args.steps)
            with competitors(args.compete):
                busy_threads = configure_threads(requested)
                _, busy, _ = run(params, name, precision, args.steps)
            print(f"{name:<14}{idle_threads:>13}{idle:>9.2f}{busy_threads:>14}{busy:>9.2f}{idle / busy:>9.2f}x",
                  flush=True)


if __name__ == "__main__":
    main()
