"""Parameters, multiply-accumulates and forward latency of ALANet and its ablations.

One window of W=3 frames at 640x352, batch 1, on the CPU (and on the GPU when there is one), at the
default width from params.yaml and at width 1.0 (the authors' model). MACs count every
convolution (the attention gates and resampling are negligible).

    .venv/bin/python bench/model.py [--repeats 3] [--height 352 --width 640]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from alabench.config import load_params
from alabench.methods import build_model, discover, with_method_options

VARIANTS = ("alanet", "alanet_self", "alanet_cross")


def conv_macs(model: nn.Module, frames: torch.Tensor) -> int:
    total = 0

    def hook(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += output.numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.inference_mode():
        model(frames)
    for h in handles:
        h.remove()
    return total


def latency(model: nn.Module, frames: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        model(frames)  # warm-up
        if frames.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model(frames)
        if frames.is_cuda:
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--height", type=int, default=352)
    parser.add_argument("--width", type=int, default=640)
    args = parser.parse_args()
    params = load_params()
    methods = discover().methods
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"window of 3 frames at {args.width}x{args.height}, batch 1, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    print(f"{'variant':<14}{'width':>6}{'params (M)':>12}{'GMACs':>9}" + "".join(f"{d + ' s/window':>16}" for d in devices))
    for width in sorted({methods["alanet"].options_from(params).width, 1.0}):
        for name in VARIANTS:
            torch.manual_seed(0)
            model = build_model(methods[name], with_method_options(params, name, width=width)).eval()
            frames = torch.rand(1, model.window, 3, args.height, args.width)
            row = (f"{name:<14}{width:>6.3g}{sum(q.numel() for q in model.parameters()) / 1e6:>12.2f}"
                   f"{conv_macs(model, frames) / 1e9:>9.1f}")
            for device in devices:
                row += f"{latency(model.to(device), frames.to(device), args.repeats):>16.3f}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
