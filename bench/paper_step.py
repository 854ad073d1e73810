"""One paper-scale training step of ALANet on this machine: peak memory, GMACs and time.

The paper's setting (params.paper.yaml): batch 2, 352x352 crops, the authors' full-width model
(width 1.0), windows of W = 3 inputs, the eq. 8 loss with the VGG16 perceptual term. Memory is the
process's peak resident set (VmHWM) above what the model, its loss and the optimiser hold before the
step, so it is what a GPU would need for activations and gradients; the weights, gradients and Adam's
two moments add 16 bytes per parameter. MACs count every convolution of the forward pass (model and
perceptual loss, by hooks); a training step costs about 3x the forward (backward ~ 2x).

    .venv/bin/python bench/paper_step.py [--precision float32|bfloat16] [--size 352] [--batch 2] [--width 1.0]

Each configuration runs in a fresh process, so one peak does not hide the next.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def conv_macs(modules: list[nn.Module], run) -> int:  # type: ignore[no-untyped-def]
    total = 0

    def hook(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups

    handles = [m.register_forward_hook(hook) for root in modules for m in root.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        run()
    for h in handles:
        h.remove()
    return total


def one(args: argparse.Namespace) -> dict[str, float]:
    """Build, count, then time one step (after a warm-up step) in this process."""
    from alabench.weights import weights_file
    from models.alanet import ALANet, ALANetConfig
    from models.losses import PerceptualLoss, ReconstructionLoss

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ALANet(ALANetConfig(window=3, width=args.width, residual=False)).to(memory_format=torch.channels_last)
    if weights_file("vgg16").is_file():
        from alabench.weights import vgg16_features
        vgg = vgg16_features()
    else:  # the same layers with random weights: memory and MACs do not depend on the values
        from torchvision.models import vgg16
        vgg = vgg16().features
    loss_fn = ReconstructionLoss(PerceptualLoss(vgg, ("relu2_2",)), 0.2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=5e-4)
    frames = torch.rand(args.batch, 3, 3, args.size, args.size)
    targets = [torch.rand(args.batch, 3, 3, args.size, args.size), torch.rand(args.batch, 2, 3, args.size, args.size)]
    dtype = torch.bfloat16 if args.precision == "bfloat16" else None

    def forward() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            deblur, interp = model(frames)
            return loss_fn([deblur.float(), interp.float()], targets)["total"]

    macs_model = conv_macs([model], lambda: model(frames))
    macs_total = conv_macs([model, loss_fn], forward)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        forward().backward()
        optimizer.step()

    step()  # warm-up: allocator pools and Adam's moments exist from here on
    before = rss_mib()
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    return {"parameters_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "model_forward_GMACs": macs_model / 1e9, "step_forward_GMACs": macs_total / 1e9,
            "step_GMACs_estimate": 3 * macs_total / 1e9, "seconds": seconds,
            "rss_before_MiB": before, "peak_MiB": peak_rss_mib(), "step_peak_MiB": peak_rss_mib() - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--size", type=int, default=352)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(args)))
        return
    print(f"ALANet training step: batch {args.batch}, {args.size}x{args.size}, width {args.width}, W = 3, "
          f"eq. 8 loss with VGG16 relu2_2, Adam; {args.threads} threads, torch {torch.__version__}")
    print(f"{'precision':<10}{'params':>8}{'model fwd':>11}{'step fwd':>10}{'step ~3x':>10}{'s/step':>8}"
          f"{'step peak':>11}{'peak RSS':>10}")
    for precision in args.precision:
        cmd = [sys.executable, __file__, "--child", "--precision", precision, "--size", str(args.size),
               "--batch", str(args.batch), "--width", str(args.width), "--threads", str(args.threads)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout)
        print(f"{precision:<10}{r['parameters_M']:>7.2f}M{r['model_forward_GMACs']:>9.1f} G{r['step_forward_GMACs']:>8.1f} G"
              f"{r['step_GMACs_estimate']:>8.1f} G{r['seconds']:>8.2f}{r['step_peak_MiB']:>7.0f} MiB"
              f"{r['peak_MiB']:>6.0f} MiB")
    print("GPU memory needed ~ step peak + 16 bytes x parameters (weights, gradients, Adam moments) + the "
          "framework's own (CUDA context ~0.5 GiB)")


if __name__ == "__main__":
    main()
