"""Clip inference: one method's outputs for a whole clip, the same way for every method.

A method maps a window of ``W = model.window`` inputs to W deblurred and W-1 interpolated frames.
Over a clip of K inputs, input k is deblurred by the window *centred* on it, and the pair (k, k+1)
is interpolated by that same window: window k holds inputs ``k - c, ..., k - c + W - 1`` with
``c = (W - 1) // 2``, so input k sits at slot c and the pair (k, k+1) is the window's interpolation
c (for W = 3: inputs k-1, k, k+1; for W = 2: the pair itself). At the clip's ends the missing
inputs are the first / last input repeated (replicate padding), so every input gets exactly one
deblurred frame and every consecutive pair exactly one interpolated frame, from a window of the
size the method was trained on. The last window's interpolation (towards a repeated input) is
dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from alabench.methods import MethodFailed, check_outputs


@dataclass
class ClipOutputs:
    deblur: torch.Tensor  # (K, 3, H, W) float, on the CPU
    interp: torch.Tensor  # (K-1, 3, H, W)
    seconds: float  # spent in the model's forward passes


def window_indices(k: int, inputs: int, window: int) -> list[int]:
    """Indices of the inputs in the window centred on input ``k`` (replicate padding at the ends)."""
    c = (window - 1) // 2
    return [min(max(k - c + j, 0), inputs - 1) for j in range(window)]


@torch.no_grad()
def infer_clip(model: nn.Module, inputs: torch.Tensor, batch: int = 4,
               device: torch.device | str = "cpu") -> ClipOutputs:
    """Deblur every input and interpolate every consecutive pair of a clip.

    ``inputs``: (K, 3, H, W) float in [0, 1], K >= 2. Each forward pass is checked against the
    method contract (shape, dtype, finite, range); whatever the method raises or breaks comes out
    as MethodFailed, so the caller can tell the method's failure from its own.
    """
    k_total, window = inputs.shape[0], int(model.window)
    if k_total < 2:
        raise ValueError(f"a clip needs at least 2 inputs, got {k_total}")
    c = (window - 1) // 2
    deblur, interp, seconds = [], [], 0.0
    for start in range(0, k_total, batch):
        ks = range(start, min(start + batch, k_total))
        windows = torch.stack([inputs[window_indices(k, k_total, window)] for k in ks]).to(device)
        begin = time.perf_counter()
        try:
            outputs = model(windows)
        except Exception as err:  # the method's own failure, whatever it is
            raise MethodFailed(f"the forward pass raised {type(err).__name__}: {err}") from err
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - begin
        d, i = check_outputs(windows, outputs)
        deblur.append(d[:, c].float().cpu())
        interp.append(i[:, c].float().cpu())
    return ClipOutputs(torch.cat(deblur), torch.cat(interp)[: k_total - 1], seconds)
