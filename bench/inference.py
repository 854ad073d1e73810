"""Seconds per output frame of clip inference: plain sliding windows against the clip runner.

Every method at params.yaml's sizes, then ALANet at width 1.0 (the authors' model) under the
settings PyTorch offers: autograd off by ``no_grad`` or ``inference_mode``, contiguous or
channels-last weights, float32 or bfloat16 autocast (``evaluate.precision``; oneDNN uses AMX where
the CPU has it), 2 or 1 threads (and, for every method, the runner with channels-last
weights: "ch.-last", wall-clock). A clip of ``--inputs`` random frames at 640x352 and random
weights (speed does not depend on them); seconds are those spent in the model (``ClipRunner.seconds``)
over the clip's 2K-1 outputs, the best of ``--repeats`` runs after a warm-up on a 2-input clip,
and the process's CPU seconds over the same runs (all threads together: on an otherwise idle
machine, wall-clock ~ CPU / threads; with other jobs on the cores, CPU time is the steadier figure).
"plain" is window by window (forward on a centred window, slot c kept: what inference did before
the runner); "runner" encodes each input once and decodes only the kept outputs where the method
allows it (``alabench.methods.Incremental``). The two are measured in alternation.

    .venv/bin/python bench/inference.py [--inputs 6] [--repeats 2] [--methods alanet unet]
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from collections.abc import Callable

import torch
from torch import nn

from alabench.config import load_params
from alabench.inference import ClipRunner
from alabench.methods import Incremental, build_model, discover, with_method_options


def seconds_per_output(model: nn.Module, frames: torch.Tensor, modes: tuple[bool, ...], grad_mode: Callable,
                       repeats: int, autocast: torch.dtype | None = None) -> dict[bool, tuple[float, float]]:
    """{reuse: (wall, CPU) seconds per output frame, each the best of ``repeats``}, modes in alternation."""
    runner_type = type("Runner", (ClipRunner,), {"grad_mode": staticmethod(grad_mode)})
    best = {reuse: (float("inf"), float("inf")) for reuse in modes}
    for reuse in modes:  # warm-up: oneDNN makes its primitives on the first call of each shape
        sum(1 for _ in runner_type(model, 1, reuse=reuse, autocast=autocast).run(frames[:2]))
    for _ in range(repeats):
        for reuse in modes:
            runner = runner_type(model, 1, reuse=reuse, autocast=autocast)
            cpu = time.process_time()
            outputs = sum(1 for _ in runner.run(frames))
            cpu = time.process_time() - cpu
            best[reuse] = (min(best[reuse][0], runner.seconds / outputs), min(best[reuse][1], cpu / outputs))
    return best


def row(label: str, model: nn.Module, frames: torch.Tensor, repeats: int, grad_mode: Callable = torch.inference_mode,
        plain: bool = True, channels_last: bool = False, autocast: torch.dtype | None = None) -> None:
    """plain vs runner; with ``channels_last``, also the runner on a channels-last copy of the model."""
    best = seconds_per_output(model, frames, (False, True) if plain else (True,), grad_mode, repeats, autocast)
    reuse = "encode once" if isinstance(model, Incremental) else "windows"
    (wall, cpu), (plain_wall, plain_cpu) = best[True], best.get(False, (math.nan, math.nan))
    line = (f"{label:<42}{reuse:>12}{plain_wall:>8.3f}{wall:>8.3f}{plain_wall / wall:>7.2f}x"
            f"{plain_cpu:>9.3f}{cpu:>8.3f}{plain_cpu / cpu:>7.2f}x")
    if channels_last:
        last = copy.deepcopy(model).to(memory_format=torch.channels_last)
        line += f"{seconds_per_output(last, frames, (True,), grad_mode, repeats)[True][0]:>10.3f}"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--height", type=int, default=352)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", nargs="*", help="default: every method in baselines/")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params, methods = load_params(), discover().methods
    frames = torch.rand(args.inputs, 3, args.height, args.width, generator=torch.Generator().manual_seed(0))
    print(f"clip of {args.inputs} inputs ({2 * args.inputs - 1} outputs) at {args.width}x{args.height}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; seconds per output frame, best of {args.repeats}")
    header = (f"{'':<54}{'wall-clock s / output':>23}{'CPU s / output (all threads)':>31}\n"
              f"{'method':<42}{'path':>12}{'plain':>8}{'runner':>8}{'ratio':>8}{'plain':>9}{'runner':>8}{'ratio':>8}")
    print(header + f"{'ch.-last':>10}")
    for name in args.methods or sorted(methods):
        torch.manual_seed(0)
        model = build_model(methods[name], params).eval()
        row(f"{name} (params.yaml)", model, frames, args.repeats, channels_last=True)

    print(f"\nALANet at width 1.0 (the authors' model), settings\n{header}")
    torch.manual_seed(0)
    model = build_model(methods["alanet"], with_method_options(params, "alanet", width=1.0)).eval()
    row("no_grad, contiguous", model, frames, args.repeats, torch.no_grad)
    row("inference_mode, contiguous", model, frames, args.repeats)
    model = model.to(memory_format=torch.channels_last)
    row("no_grad, channels_last", model, frames, args.repeats, torch.no_grad, plain=False)
    row("inference_mode, channels_last", model, frames, args.repeats)
    row("inference_mode, channels_last, bfloat16", model, frames, args.repeats, autocast=torch.bfloat16)
    torch.set_num_threads(1)
    row("inference_mode, channels_last, 1 thread", model, frames, args.repeats, plain=False)
    torch.set_num_threads(args.threads)


if __name__ == "__main__":
    main()
