"""Training diagnostics: is the attention learning anything? Numbers for a per-epoch history row.

Kept apart from ``alabench.probes`` (which runs evaluations) so that the train stage, which calls
:func:`training_diagnostics`, depends on torch and ``models/`` only, not on the evaluation code.
"""

from __future__ import annotations

import torch
from torch import nn

from models.alanet import ChannelAttention


def weight_changes(model: nn.Module, initial_state: dict[str, torch.Tensor]) -> dict[str, float]:
    """``weight_change_<child>`` = ||W − W0|| / ||W0|| over all parameters of each top-level module
    (encoder, attention, deblur_generator, interp_generator for ALANet; a shared module counts once,
    under its first name); W0 from ``initial_state`` (a state_dict copied before training). A module
    without parameters, or whose W0 is all zero, is left out."""
    out = {}
    for child, module in model.named_children():
        params = [(f"{child}.{name}", p) for name, p in module.named_parameters()]
        if not params or any(key not in initial_state for key, _ in params):
            continue
        before = torch.cat([initial_state[key].detach().float().flatten().cpu() for key, _ in params])
        after = torch.cat([p.detach().float().flatten().cpu() for _, p in params])
        norm = before.norm()
        if norm > 0:
            out[f"weight_change_{child}"] = float((after - before).norm() / norm)
    return out


def gate_spread(model: nn.Module, inputs: torch.Tensor) -> dict[str, float]:
    """For a model with channel-attention gates: run it (eval mode, no gradients) on ``inputs``
    (B, W, 3, H, W) validation windows and return ``gate_spread``, the standard deviation across the
    frames each gate saw of its output, averaged over channels and gates (0: the gate ignores its
    input), and ``gate_offset``, the mean |F(·) − 0.5| (0 with the spread: every gate stuck at 0.5,
    a latent scaled by a constant). {} for a model without gates."""
    gates = [m for m in model.modules() if isinstance(m, ChannelAttention)]
    if not gates:
        return {}
    seen: dict[int, list[torch.Tensor]] = {id(g): [] for g in gates}
    hooks = [g.register_forward_hook(lambda m, _, out: seen[id(m)].append(out.detach().float().flatten(1)))
             for g in gates]
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(inputs)
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    outputs = [torch.cat(v) for v in seen.values() if v]  # each (frames, C)
    if not outputs:
        return {}
    spread = [o.std(0, unbiased=False).mean() for o in outputs]
    offset = [(o - 0.5).abs().mean() for o in outputs]
    return {"gate_spread": float(torch.stack(spread).mean()), "gate_offset": float(torch.stack(offset).mean())}


def training_diagnostics(model: nn.Module, initial_state: dict[str, torch.Tensor],
                         val_inputs: torch.Tensor) -> dict[str, float]:
    """Flat str -> float for one history row: each top-level module's relative weight change since
    ``initial_state`` (:func:`weight_changes`) and, for a model with gates, their spread across the
    frames of ``val_inputs`` (:func:`gate_spread`)."""
    return {**weight_changes(model, initial_state), **gate_spread(model, val_inputs)}
