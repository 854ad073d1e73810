"""Does a port compute what its authors' model computes, given the same weights?

``python -m bench.authors_equivalence --method M --authors-code PATH`` builds the authors' model of M
from a checkout of their public code (``bench.authors_models``; read, never copied here), gives it
random weights (their own initialisation, every parameter and BatchNorm statistic then perturbed),
saves those in the layout of their released checkpoint, loads that file into the port at the
published size through :func:`alabench.released.load_released`, runs both in eval mode on the same
random [0, 1] frames and prints the largest |difference| of each output. Exit status 1 when one
exceeds ``--tolerance`` (1e-5). ``--record`` notes a run within it in
``alabench/released_manifests/verified.json`` (the digest of the key mapping it checked).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from alabench.config import load_params
from alabench.frames import atomic_path
from alabench.released import MANIFEST_DIR, build_published, load_released, mapping_digest, release
from bench.authors_models import AUTHORS

Outputs = dict[str, torch.Tensor]


@contextlib.contextmanager
def on_cpu() -> Iterator[None]:
    """DAIN's forward asks for a CUDA device and streams and makes CUDA tensors: the CPU's instead."""
    names = ("current_device", "current_stream", "stream", "synchronize", "FloatTensor")
    saved, cuda = {name: getattr(torch.cuda, name) for name in names}, torch.Tensor.cuda
    torch.cuda.current_device = torch.cuda.current_stream = torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.stream = lambda *a, **k: contextlib.nullcontext()
    torch.cuda.FloatTensor = lambda *a, **k: torch.empty(0)  # of the default dtype (float64 under --float64)
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(torch.cuda, name, value)
        torch.Tensor.cuda = cuda


@contextlib.contextmanager
def their_torch(version: tuple[int, int]) -> Iterator[None]:
    """Sampling defaults as the authors' pinned PyTorch ``version`` had them (torch 2 differs and warns):
    ``grid_sample`` aligned corners before 1.3, bilinear up-sampling (``nn.Upsample``) before 0.4."""
    functional = torch.nn.functional
    grid_sample, interpolate = functional.grid_sample, functional.interpolate

    def sample(*args, align_corners=None, **kwargs):  # type: ignore[no-untyped-def]
        aligned = version < (1, 3) if align_corners is None else align_corners
        return grid_sample(*args, align_corners=aligned, **kwargs)

    def upsample(*args, **kwargs):  # type: ignore[no-untyped-def]
        call = inspect.signature(interpolate).bind(*args, **kwargs)  # nn.Upsample passes them by position
        call.apply_defaults()
        if call.arguments["align_corners"] is None and call.arguments["mode"] == "bilinear" and version < (0, 4):
            call.arguments["align_corners"] = True
        return interpolate(*call.args, **call.kwargs)
    functional.grid_sample, functional.interpolate = sample, upsample
    try:
        yield
    finally:
        functional.grid_sample, functional.interpolate = grid_sample, interpolate


def perturb(model: nn.Module, generator: torch.Generator) -> None:
    """Random weights: each parameter moved by noise of its own scale; BatchNorm statistics moved too
    (shared modules are visited once, so aliases stay equal)."""
    with torch.no_grad():
        for p in model.parameters():
            scale = float(p.abs().mean()) or 0.05
            p.add_(torch.randn(p.shape, generator=generator) * 0.5 * scale)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.add_(torch.randn(b.shape, generator=generator) * 0.1)
            elif name.endswith("running_var"):
                b.mul_(torch.rand(b.shape, generator=generator) + 0.5)


# ------------------------------------------------------------------------------------------------
# Each method's outputs, the authors' way and the port's, on frames (1, n, 3, H, W).


def pair_middle(port: nn.Module, frames: torch.Tensor) -> Outputs:
    return {"middle": port(frames[:, :2])[1][:, 0]}


def superslomo_authors(model: nn.Module, frames: torch.Tensor) -> Outputs:
    """The authors' inference (eval.py / video_to_slomo.py) at t = 1/2: their frames minus the mean of
    their training set (train.py's ``mean``), added back to the middle frame."""
    mean = frames.new_tensor([0.429, 0.431, 0.397]).view(1, 3, 1, 1)
    i0, i1 = frames[:, 0] - mean, frames[:, 1] - mean
    flows = model.state_dictFC(torch.cat([i0, i1], 1))
    f01, f10 = flows[:, :2], flows[:, 2:]
    t = 0.5
    ft0, ft1 = -(1 - t) * t * f01 + t * t * f10, (1 - t) * (1 - t) * f01 - t * (1 - t) * f10
    warp = model.backWarp(i0.shape[3], i0.shape[2], "cpu")
    g0, g1 = warp(i0, ft0), warp(i1, ft1)
    out = model.state_dictAT(torch.cat([i0, i1, f01, f10, ft1, ft0, g1, g0], 1))
    ft0f, ft1f, v0 = out[:, :2] + ft0, out[:, 2:4] + ft1, torch.sigmoid(out[:, 4:5])
    v1 = 1 - v0
    g0f, g1f = warp(i0, ft0f), warp(i1, ft1f)
    return {"middle": ((1 - t) * v0 * g0f + t * v1 * g1f) / ((1 - t) * v0 + t * v1) + mean}


def cain_authors(model: nn.Module, frames: torch.Tensor) -> Outputs:
    return {"middle": model(frames[:, 0], frames[:, 1])[0].clamp(0, 1)}


def nafnet_authors(model: nn.Module, frames: torch.Tensor) -> Outputs:
    return {"deblurred": model(frames[:, 0])}


def nafnet_port(port: nn.Module, frames: torch.Tensor) -> Outputs:
    return {"deblurred": port(frames[:, :2])[0][:, 0]}


# BIN's 14 outputs of a 6-input window (their names), and where the port's window hands each out.
BIN_DEBLUR = {1: (0, 4, "I3'"), 2: (0, 9, "I5'''"), 3: (1, 9, "I7'''"), 4: (1, 6, "I9'")}
BIN_MIDDLE = {0: (0, 0, "I2'"), 1: (0, 7, "I4''"), 2: (0, 8, "I6''"), 3: (1, 8, "I8''"), 4: (1, 3, "I10'")}


def bin_authors(model: nn.Module, frames: torch.Tensor) -> Outputs:
    out = model(*frames.unbind(1))
    passes = [out[:10], (None, None, None, out[10], None, None, out[11], None, out[12], out[13])]
    # clamped to [0, 1] as the port's are outside training (and as every method's are when scored)
    return {name: passes[p][k].clamp(0, 1) for table in (BIN_DEBLUR, BIN_MIDDLE) for p, k, name in table.values()}


def bin_port(port: nn.Module, frames: torch.Tensor) -> Outputs:
    deblur, middle = port(frames)
    return {**{name: deblur[:, slot] for slot, (_, _, name) in BIN_DEBLUR.items()},
            **{name: middle[:, slot] for slot, (_, _, name) in BIN_MIDDLE.items()}}


def memc_authors(model: nn.Module, frames: torch.Tensor) -> Outputs:
    """networks.DAIN / MEMC_Net in test mode: input (2, B, 3, H, W); outputs [warped, rectified]."""
    with on_cpu():
        outputs = model(frames[0].unsqueeze(1))[0]
    return {"middle": outputs[1].clamp(0, 1)}  # the rectified frame, clamped as the port's is outside training


@dataclass(frozen=True)
class Case:
    frames: int  # inputs per sample
    authors: Callable[[nn.Module, torch.Tensor], Outputs]
    port: Callable[[nn.Module, torch.Tensor], Outputs]
    torch: tuple[int, int]  # the PyTorch their code pinned (its environment file or README)
    scale: dict[str, float] = field(default_factory=dict)  # the authors' parameters (regex) scaled after the
    # perturbation: flow heads so that random flows move pixels by a pixel or so, not off the frame (where every
    # warp would read its border), kernel and occlusion heads so that outputs stay near [0, 1]


CASES = {
    "superslomo": Case(2, superslomo_authors, pair_middle, torch=(0, 4)),  # README: 0.4.1
    "cain": Case(2, cain_authors, pair_middle, torch=(1, 3)),  # README: 1.3.1
    "nafnet": Case(1, nafnet_authors, nafnet_port, torch=(1, 11)),  # readme: 1.11.0
    "bin": Case(6, bin_authors, bin_port, torch=(1, 3)),  # README: tested with 1.3.0
    "dain": Case(2, memc_authors, pair_middle, torch=(1, 0),  # environment.yaml: 1.0.1
                 scale={r"flownets\.(predict_flow\d|dc_conv7|deconv\d)\..*": 0.01, r"rectifyNet\.block5\..*": 0.01}),
    "memcnet": Case(2, memc_authors, pair_middle, torch=(0, 2),  # environment.yml: 0.2.0
                    scale={r"flownets\.predict_flow\d\..*": 100.0,
                           r"initScaleNets_(filter|occlusion)[12]\.2\..*|rectifyNet\.14\..*": 0.01}),
}


def compare(method: str, checkout: Path, size: int = 128, seed: int = 0,
            dtype: torch.dtype = torch.float32, pinned: bool = True) -> dict[str, tuple[float, float]]:
    """Each output's largest |authors' - port's|, and the share of its values strictly inside (0, 1)
    (a comparison of values all clamped to 0 or 1 would say little)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # their own initialisation draws from the global generator
    authors = AUTHORS[method].build(checkout)
    perturb(authors, generator)
    case = CASES[method]
    with torch.no_grad():
        for name, p in authors.named_parameters():
            for pattern, factor in case.scale.items():
                if re.fullmatch(pattern, name):
                    p.mul_(factor)
    authors.eval()
    port = build_published(method, load_params())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{method}_released.pth"
        torch.save(release(method).wrap(authors.state_dict()), path)
        load_released(method, port, path)
    frames = torch.rand(1, max(case.frames, 2), 3, size, size, generator=generator, dtype=dtype)
    authors.to(dtype), port.to(dtype)
    with torch.no_grad():  # the authors' code may change its inputs in place (CAIN's sub_mean): a copy each
        default, _ = torch.get_default_dtype(), torch.set_default_dtype(dtype)
        try:
            with their_torch(case.torch if pinned else (99, 0)):
                theirs = case.authors(authors, frames.clone())
        finally:
            torch.set_default_dtype(default)
        ours = case.port(port, frames.clone())
    return {name: (float((theirs[name] - ours[name]).abs().max()),
                   float(((ours[name] > 0) & (ours[name] < 1)).float().mean())) for name in theirs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=sorted(CASES), required=True)
    parser.add_argument("--authors-code", type=Path, required=True, help="a checkout of the authors' repository")
    parser.add_argument("--size", type=int, default=128, help="frame height and width (a multiple of 64)")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--float64", action="store_true", help="both models in float64: rounding out of the way")
    parser.add_argument("--record", action="store_true", help="within tolerance: note the verified mapping")
    parser.add_argument("--current-torch", action="store_true",
                        help="run their code with this torch's sampling defaults, not those of the torch they pinned")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    dtype = torch.float64 if args.float64 else torch.float32
    diffs = compare(args.method, args.authors_code, args.size, dtype=dtype, pinned=not args.current_torch)
    worst = max(d for d, _ in diffs.values())
    print(f"{args.method}: the authors' {AUTHORS[args.method].repo} at {AUTHORS[args.method].commit} vs the port at "
          f"the published size, same random weights, random [0, 1] frames {args.size}x{args.size}, {dtype}, their "
          + ("code under this torch's defaults" if args.current_torch else
             "torch's sampling defaults (%d.%d)" % CASES[args.method].torch))
    for name, (d, inside) in diffs.items():
        print(f"  {name:12s} max |diff| {d:.3g}   ({inside:.0%} of the port's values inside (0, 1))")
    print(f"max |diff| = {worst:.3g} ({'within' if worst <= args.tolerance else 'ABOVE'} {args.tolerance:g})")
    if args.record and worst <= args.tolerance:
        flags = [flag for flag, on in (("--float64", args.float64), ("--current-torch", args.current_torch)) if on]
        record(args.method, worst, " ".join([f"--method {args.method}", *flags, f"--size {args.size}"]))
    return 0 if worst <= args.tolerance else 1


def record(method: str, worst: float, how: str) -> None:
    """Note in verified.json that this mapping of ``method`` made the outputs agree (a later change of
    the mapping fails tests/test_released_weights.py until this bench passes again)."""
    path = MANIFEST_DIR / "verified.json"
    done = json.loads(path.read_text()) if path.is_file() else {}
    done[method] = {"mapping_sha256": mapping_digest(method), "max_abs_diff": worst, "run": how}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(dict(sorted(done.items())), indent=1) + "\n")
    print(f"recorded in {path}")


if __name__ == "__main__":
    sys.exit(main())
