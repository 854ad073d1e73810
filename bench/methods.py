"""What does one training step of each trainable method cost, next to ALANet's?

The trainable baselines' default sizes (params.yaml, `methods:`) are chosen so that an epoch costs
about what ALANet's does. This builds every method in `train.methods` as params.yaml does and
times whole training steps (forward, the train stage's loss, backward, Adam) on random windows of
the training shape (`train.batch_size` windows of `train_data.window` frames,
`train_data.crop` pixels square). Each method is timed twice, in an interleaved order, and the
best step of each is kept: the machine may be shared.

    .venv/bin/python bench/methods.py [--steps 5] [--threads 2] [--methods alanet bin nafnet]
                                      [--option bin.width=0.25 --option nafnet.encoder=[1,1,2]]

``--methods`` times other methods than train.methods (alanet, the reference, is always added);
``--option`` sets one knob as ``methods.<name>`` would (a YAML value), to size a method for the CPU.
"""

from __future__ import annotations

import argparse
import time

import torch
import yaml

from alabench.config import load_params
from alabench.methods import build_model, get_method, parameter_count, with_method_options
from alabench.threads import configure_threads
from models.losses import ReconstructionLoss


def best_step(model: torch.nn.Module, loss_fn: torch.nn.Module, batch: dict[str, torch.Tensor], steps: int) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    times = []
    for _ in range(steps + 1):  # the first step warms up
        start = time.perf_counter()
        deblur, interp = model(batch["inputs"])
        loss = loss_fn([deblur, interp], [batch["deblur"], batch["interp"]])["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: train.threads)")
    parser.add_argument("--methods", nargs="+", default=None, help="methods to time (default: train.methods)")
    parser.add_argument("--option", action="append", default=[], metavar="NAME.KEY=VALUE",
                        help="a knob of one method, as methods.NAME.KEY in params.yaml (repeatable)")
    args = parser.parse_args()
    params = load_params()
    for option in args.option:
        target, _, value = option.partition("=")
        name, _, key = target.partition(".")
        if not (name and key and value):
            parser.error(f"--option {option!r}: write NAME.KEY=VALUE, e.g. bin.width=0.25")
        params = with_method_options(params, name, **{key: yaml.safe_load(value)})
    configure_threads(args.threads or params.train.threads)  # as the train stage: at most that, fewer under load
    if params.train.perceptual_weight > 0:
        from alabench.weights import vgg16_features
        from models.losses import PerceptualLoss
        loss_fn = ReconstructionLoss(PerceptualLoss(vgg16_features(), params.train.perceptual_layers),
                                     params.train.perceptual_weight)
    else:
        loss_fn = ReconstructionLoss(None, 0.0)
    b, w, c = params.train.batch_size, params.train_data.window, params.train_data.crop
    g = torch.Generator().manual_seed(0)
    batch = {"inputs": torch.rand(b, w, 3, c, c, generator=g), "deblur": torch.rand(b, w, 3, c, c, generator=g),
             "interp": torch.rand(b, w - 1, 3, c, c, generator=g)}
    names = list(dict.fromkeys(["alanet", *args.methods])) if args.methods else list(params.train.methods)
    models = {}
    for name in names:
        torch.manual_seed(0)
        models[name] = build_model(get_method(name), params)
    best = {name: float("inf") for name in names}
    for order in (names, names[::-1]):
        for name in order:
            best[name] = min(best[name], best_step(models[name], loss_fn, batch, args.steps))
    span = (w - 1) * params.blur.stride + params.blur.window  # sharp frames under one training window
    windows = (params.synth.train.clips - params.train_data.val_clips) * (params.synth.train.frames - span + 1)
    steps_per_epoch = windows // b  # the embedded data set's training windows
    print(f"training step: batch {b} x {w} frames x {c}x{c}, perceptual weight {params.train.perceptual_weight}, "
          f"{torch.get_num_threads()} threads, best of {2 * args.steps}")
    print(f"{'method':<14}{'params':>10}{'s / step':>10}{'vs alanet':>11}{'s / epoch':>11}")
    for name in names:
        ratio = best[name] / best["alanet"] if "alanet" in best else float("nan")
        print(f"{name:<14}{parameter_count(models[name]) / 1e6:>9.2f}M{best[name]:>10.3f}{ratio:>10.2f}x"
              f"{best[name] * steps_per_epoch:>11.0f}")


if __name__ == "__main__":
    main()
