"""Clip inference: one method's outputs for a whole clip, the same way for every method.

A method maps a window of ``W = model.window`` inputs to W deblurred and W-1 interpolated frames.
Over a clip of K inputs, input k is deblurred by the window *centred* on it, and the pair (k, k+1)
is interpolated by that same window: window k holds inputs ``k - c, ..., k - c + W - 1`` with
``c = (W - 1) // 2``, so input k sits at slot c and the pair (k, k+1) is the window's interpolation
c (for W = 3: inputs k-1, k, k+1; for W = 2: the pair itself). At the clip's ends the missing
inputs are the first / last input repeated (replicate padding), so every input gets exactly one
deblurred frame and every consecutive pair exactly one interpolated frame, from a window of the
size the method was trained on. The last window's interpolation (towards a repeated input) is
not made. A module may keep another slot than the centre: ``centre`` (an int attribute, 0 <= c <=
W - 2; BIN keeps slot 3 of its 6, the second pass's centre, as its authors test); window k then
holds inputs ``k - centre, ..., k - centre + W - 1``.

:class:`ClipRunner` slides that window over a *stream* of frames and yields each output as soon
as its window is complete, holding at most ``W + 2 * batch`` inputs (or their features): memory
does not grow with the clip. A module that implements ``alabench.methods.Incremental`` has each input
encoded once and only the kept outputs decoded (window by window, an input of a W-frame window is
encoded W times and W + W-1 outputs are decoded to keep 2); any other module runs ``forward`` on
``batch`` windows at a time and keeps slot c. Both give the same frames (to float rounding).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from alabench.methods import Features, Incremental, MethodFailed, Recurrent, check_frames, check_outputs

T = TypeVar("T")
Output = tuple[str, int, torch.Tensor]  # ("deblur", k, input k deblurred) or ("interp", k, between k and k+1)
Window = tuple[int, bool, list]  # (k, whether input k+1 exists, the items of the window centred on k)


@dataclass
class ClipOutputs:
    deblur: torch.Tensor  # (K, 3, H, W) float, on the CPU
    interp: torch.Tensor  # (K-1, 3, H, W)
    seconds: float  # spent in the model's forward passes


def window_indices(k: int, inputs: int, window: int, centre: int | None = None) -> list[int]:
    """Indices of the inputs in the window whose slot ``centre`` (default: the middle) holds input
    ``k`` (replicate padding at the ends)."""
    c = (window - 1) // 2 if centre is None else centre
    return [min(max(k - c + j, 0), inputs - 1) for j in range(window)]


def kept_slot(model: nn.Module) -> int:
    """The slot of a window whose outputs clip inference keeps: the module's ``centre``, else the middle."""
    window = int(model.window)
    centre = getattr(model, "centre", (window - 1) // 2)
    if not isinstance(centre, int) or not 0 <= centre <= window - 2:
        raise MethodFailed(f"`centre` must be an int from 0 to window - 2 = {window - 2} (the slot whose "
                           f"outputs clip inference keeps), got {centre!r}")
    return centre


def sliding_windows(items: Iterable[T], window: int, centre: int | None = None) -> Iterator[Window]:
    """Every window of a stream, in order, each as soon as its last item is read; at most
    ``window`` items are held (the clip's length is known only at its end, so the windows that
    reach past it wait for the stream to stop)."""
    centre = (window - 1) // 2 if centre is None else centre
    ahead = window - 1 - centre  # slots after the kept one
    held: deque[T] = deque(maxlen=window)
    read = k = 0

    def items_of(k: int) -> list[T]:
        first = read - len(held)
        # clamping to the inputs read so far is the replicate padding: before the end, no window
        # reaches past them
        return [held[i - first] for i in window_indices(k, read, window, centre)]

    for item in items:
        held.append(item)
        read += 1
        if read > k + ahead:
            yield k, True, items_of(k)
            k += 1
    if read < 2:
        raise ValueError(f"a clip needs at least 2 inputs, got {read}")
    for k in range(k, read):
        yield k, k + 1 < read, items_of(k)


def batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, n)):
        yield chunk


def _own(frame: torch.Tensor) -> torch.Tensor:
    """A CPU float32 copy: an output the caller keeps must not keep its whole batch alive."""
    return frame.detach().to("cpu", torch.float32, copy=True)


class ClipRunner:
    """Runs one model over clips; ``seconds`` adds up the time spent in the model.

    ``batch``: windows (and, for an Incremental module, frames to encode) per call. ``reuse``:
    False runs ``forward`` window by window even for an Incremental module (the plain reference).
    ``autocast``: a lower-precision type for the model's arithmetic (None: as the model is).
    """

    grad_mode = torch.inference_mode  # no autograd bookkeeping at all (bench/inference.py: vs no_grad)

    def __init__(self, model: nn.Module, batch: int = 4, device: torch.device | str = "cpu",
                 reuse: bool = True, autocast: torch.dtype | None = None) -> None:
        self.model, self.batch, self.device = model, max(1, int(batch)), torch.device(device)
        self.autocast = autocast  # e.g. torch.bfloat16: the model's arithmetic in that type (outputs come back float32)
        self.window = int(model.window)
        self.centre = kept_slot(model)  # the slot whose outputs are kept: input k's window puts k there
        self.reuse = reuse and isinstance(model, Incremental)
        self.recurrent = reuse and isinstance(model, Recurrent)  # windows in order, a state handed on
        self.seconds = 0.0
        # a chained module (alabench.methods.Chained, e.g. a cascade): each part over the clip in turn
        chain = getattr(model, "chain", None) if reuse else None
        self.parts = [ClipRunner(part, batch, device, reuse, autocast) for part in chain] if chain else []
        self._frame = torch.Size()  # (3, H, W) of the clip being run: what deblur_at / interp_at must return
        self._state: Any = None  # a Recurrent module's state, handed from window to window of a clip

    def run(self, frames: Iterable[torch.Tensor]) -> Iterator[Output]:
        """The outputs of a clip given as (3, H, W) float frames in [0, 1], one at a time: input k's
        deblurred frame, then (unless k is the last input) the frame between k and k+1. Frames are
        read only as far as the next output needs; every call into the model is checked against
        the contract, and whatever the method raises or breaks comes out as MethodFailed."""
        if self.parts:
            yield from self._chained(frames)
            return
        if self.reuse:
            items: Iterable[Any] = self._encoded(frames)
            decode: Callable[[list[Window]], tuple[torch.Tensor, torch.Tensor]] = self._decode
        elif self.recurrent:
            self._state = None  # a clip starts afresh
            items, decode = (f.to(self.device) for f in frames), self._recurrent
        else:
            items, decode = (f.to(self.device) for f in frames), self._forward
        for group in batched(sliding_windows(items, self.window, self.centre), self.batch):
            deblur, interp = decode(group)
            for j, (k, has_pair, _) in enumerate(group):
                yield "deblur", k, _own(deblur[j])
                if has_pair:
                    yield "interp", k, _own(interp[j])

    def _chained(self, frames: Iterable[torch.Tensor]) -> Iterator[Output]:
        """The first part deblurs the clip; the second interpolates between its deblurred frames
        (clipped to [0, 1]), read as the second needs them: one output per input and per pair."""
        first, second = self.parts
        deblurred: deque[torch.Tensor] = deque()

        def feed() -> Iterator[torch.Tensor]:
            for kind, _, frame in first.run(frames):
                if kind == "deblur":
                    deblurred.append(frame.clamp(0, 1))
                    yield deblurred[-1]

        try:
            for kind, k, frame in second.run(feed()):
                yield (kind, k, deblurred.popleft()) if kind == "deblur" else (kind, k, frame)
        finally:
            self.seconds = first.seconds + second.seconds

    def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        begin = time.perf_counter()
        try:
            with self.grad_mode(), torch.autocast(self.device.type, dtype=self.autocast,
                                                  enabled=self.autocast is not None):
                out = fn(*args)
        except Exception as err:  # the method's own failure, whatever it is
            raise MethodFailed(f"{what} raised {type(err).__name__}: {err}") from err
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - begin
        return out

    def _forward(self, group: list[Window]) -> tuple[torch.Tensor, torch.Tensor]:
        """Plain windowing: ``forward`` on the group's windows, slot c kept."""
        windows = torch.stack([torch.stack(items) for _, _, items in group])
        deblur, interp = check_outputs(windows, self._call("the forward pass", self.model, windows))
        return deblur[:, self.centre], interp[:, self.centre]

    def _recurrent(self, group: list[Window]) -> tuple[torch.Tensor, torch.Tensor]:
        """``step`` on each window of the group in turn, the state handed from one to the next."""
        outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        for _, _, items in group:
            window = torch.stack(items)[None]
            out = self._call("step", self.model.step, window, self._state)
            if not (isinstance(out, tuple) and len(out) == 3):
                raise MethodFailed(f"step must return (deblur, interp, state), got {type(out).__name__}")
            shape = (1, *window.shape[2:])
            deblur, interp, self._state = out
            outputs.append((check_frames("deblur", deblur, shape, tuple(window.shape)),
                            check_frames("interp", interp, shape, tuple(window.shape))))
        return torch.cat([d for d, _ in outputs]), torch.cat([i for _, i in outputs])

    def _encoded(self, frames: Iterable[torch.Tensor]) -> Iterator[Features]:
        """Each frame's features, ``batch`` frames per encoder call."""
        for chunk in batched(frames, self.batch):
            stacked = torch.stack(chunk).to(self.device)
            self._frame = stacked.shape[1:]
            feats = self._call("encode_frames", self.model.encode_frames, stacked)
            if not (isinstance(feats, (list, tuple)) and feats
                    and all(isinstance(t, torch.Tensor) and t.shape[:1] == stacked.shape[:1] for t in feats)):
                raise MethodFailed(f"encode_frames must return a list of tensors whose dim 0 indexes the "
                                   f"{len(chunk)} frames")
            yield from ([t[n:n + 1] for t in feats] for n in range(len(chunk)))

    def _decode(self, group: list[Window]) -> tuple[torch.Tensor, torch.Tensor]:
        """Only the kept outputs: slot c deblurred for every window, interpolation c for those
        with a next input (all but the clip's last, which ends a group)."""
        c = self.centre
        window = [[torch.cat(parts) if len(group) > 1 else parts[0] for parts in zip(*slot)]
                  for slot in zip(*(items for _, _, items in group))]
        shape = (len(group), *self._frame)
        deblur = check_frames("deblur", self._call("deblur_at", self.model.deblur_at, window, c), shape, shape)
        pairs = sum(has_pair for _, has_pair, _ in group)
        interp = torch.empty(0)
        if pairs:
            window = [[t[:pairs] for t in slot] for slot in window] if pairs < len(group) else window
            interp = check_frames("interp", self._call("interp_at", self.model.interp_at, window, c),
                                  (pairs, *shape[1:]), shape)
        return deblur, interp


def infer_clip(model: nn.Module, inputs: torch.Tensor, batch: int = 4, device: torch.device | str = "cpu",
               reuse: bool = True, autocast: torch.dtype | None = None) -> ClipOutputs:
    """A whole clip at once: ``inputs`` (K, 3, H, W) float in [0, 1], K >= 2 (see ClipRunner)."""
    runner = ClipRunner(model, batch, device, reuse, autocast)
    out: dict[str, list[torch.Tensor]] = {"deblur": [], "interp": []}
    for kind, _, frame in runner.run(inputs):
        out[kind].append(frame)
    return ClipOutputs(torch.stack(out["deblur"]), torch.stack(out["interp"]), runner.seconds)
