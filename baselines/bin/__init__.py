"""BIN, "Blurry Video Frame Interpolation" (Shen et al., CVPR 2020), re-implemented here: BIN₄ by default.

Written from the paper and the layout of the authors' model (laomao0/BIN, `bin_stage4_lstm`, read,
not copied). One *pyramid pass* maps five consecutive blurry inputs B1, B3, B5, B7, B9 (odd positions
= inputs, even = the frames between them) to frames at four scales of the pyramid, each level one
residual dense network (``models.rdn.FrameRDN``) shared by every position of that level:

1. I2, I4, I6, I8 = R1(B1, B3), R1(B3, B5), ...            (the middles of neighbouring inputs)
2. I3, I5, I7    = R2(p4, I2, I4), ...                     (the inputs, deblurred)
3. I4', I6'      = R3(p5, B3, I3, I5, B5), ...             (the middles, refined)
4. I5''          = R4(p6, I4, I4', I6', I6)                (the centre input, final)

The inter-pyramid recurrent module: p4, p6, p8, p5, p7, p6 are the previous pass's estimates of the
same instants (its I4, I6, I8, I5, I7, I6'), each through a ConvLSTM cell whose state follows the
video; without a previous pass they are this pass's own neighbours (I2, I4, I6, I3, I5, I4), as in
the authors' code. BIN trains on windows of **6 inputs**: a pass on B1..B9, then one on B3..B11 fed
by the first's recurrent state. So does ``forward`` (``window = 6``): slot 2 and the middle of slots
2-3 come from the first pass's I5'' and I6', and slot 3 and the middle of slots 3-4 from the second
pass's, made with the state (what clip inference keeps, below); every other output
of the window is the finest-level estimate of that instant, so even the shared loss reaches every
level, but slots 0 and 5, the window's ends, return their inputs (``scored_slots``: what validation
should score). (The second pass's I4' is not handed out: the published loss never supervises it.)
BIN trains on its own 6-input windows (option ``window``, which overrides ``train_data.window``), so
its second pass learns from a state made of real frames, as at test time; its training clips must
hold 51 sharp frames. A shorter window (``window`` 3, say) is replicate-padded to 6 around its
centre, as clip inference pads a clip's ends: then the second pass only ever sees repeated frames.
Clip inference follows the authors' test code (laomao0/BIN ``test.py``) by default: each output gets
a fresh 6-input window, the two passes of ``forward`` with the state reset, and keeps the second
pass's outputs. Input k and the middle of inputs k, k+1 come from the window on inputs k-3 .. k+2
(``centre`` = slot 3, the second pass's centre): its I5'' (the authors' I7''', ``Ft_p[13]``) and
its I6' (their I8'', ``Ft_p[12]``); the clip's ends are replicate-padded, as their clamped indices
are. Two outputs differ from theirs: they never output input 0, and take the middle of inputs 0, 1
from the *first* pass of the window on inputs 0, 0, 0, 1, 2, 3 (``Ft_p[8]``); here both come from
the window on 0, 0, 0, 0, 1, 2, as every other output does. ``carry_state: true`` carries the state
along the whole clip instead (``CarriedBIN.step``, ``alabench.methods.Recurrent``): one pass per
output on the same five inputs (slots 1-5 of that window), fed by the previous output's pass from
the clip's first on; half the cost, but the cell state then grows along the clip, while training
only ever sees it after one pass.

Trained with its published loss (``BINLoss``, as the authors' ``bin_model.get_loss`` for BIN₄):
the Charbonnier penalty sqrt(d² + 1e-6) of each of the 14 pyramid outputs of a 6-input window
against its sharp frame (all ten of the first pass, I7, I8, I9, I10 of the second), plus three
consistency terms between levels of the first pass (I4 vs I4', I5 vs I5'', I6 vs I6'), the mean of
the 17. The authors' config also names an ``ssim_weight`` that their loss never reads: no SSIM term.
``loss: shared`` takes the train stage's eq. 8 loss instead. With a window shorter than 6 (padded),
the outputs at instants the window has no sharp frame for drop out of the mean.

Differences from the published model, said plainly: every level's last layer starts
at zero, so an untrained model returns means of its inputs (not the inputs themselves: no level
sees the input it deblurs, so an untrained BIN scores below the blurry inputs); ``width`` scales the
96 features and 32-channel growth; ``blocks`` = RDBs per level (12 published). At width 1.0,
blocks 12, layers 4 it has 11,441,668 parameters, the count of the authors' model
(``BIN.published_parameters``: a smaller row can say how much smaller).
"""

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from torch import nn

from alabench.config import Params, Range
from alabench.methods import TASKS, Method, register
from alabench.released import released_weights
from alabench.training import overrides, shared_loss
from models.alanet import pad_frames
from models.rdn import ConvLSTMCell, FrameRDN

WINDOW = 6  # inputs per window: two pyramid passes of 5, the second fed by the first's recurrent state
CENTRE = (WINDOW - 1) // 2  # where forward centres a shorter (training) window
KEPT = 3  # the slot clip inference keeps: the second pass's centre, as the authors' test keeps it
HAND_ON = ("i4", "i6", "i8", "i5", "i7", "i6b")  # a pass's estimates that the next pass uses (as p4 ... p6')
# Where each output of a pass on slots s..s+4 lies, in half-input steps from slot s (inputs even,
# middles odd): I2 is the middle of slots s and s+1, I3 the input s+1 deblurred, and so on.
POSITION = {"i2": 1, "i4": 3, "i6": 5, "i8": 7, "i3": 2, "i5": 4, "i7": 6, "i4b": 3, "i6b": 5, "i5c": 4}
SUPERVISED = (("first", tuple(POSITION)), ("second", ("i8", "i7", "i6b", "i5c")))  # the published 14 outputs
CONSISTENT = (("i4", "i4b"), ("i5", "i5c"), ("i6", "i6b"))  # the published cycle terms (first pass)


@dataclass(frozen=True)
class Options:
    width: Annotated[float, Range(0.03125, 4.0)] = 1.0  # x the published 96 features, 32 growth
    blocks: Annotated[int, Range(1, 64)] = 12  # residual dense blocks per pyramid level
    layers: Annotated[int, Range(1, 16)] = 4  # convolutions per dense block
    recurrent: bool = True  # the ConvLSTM cells (false: estimates handed on directly, the authors' non-LSTM variant)
    loss: Literal["published", "shared"] = "published"  # BINLoss (Charbonnier, every pyramid output), or eq. 8
    # inputs per training window, over train_data.window (published 6: both passes)
    window: Annotated[int, Range(2, WINDOW)] = overrides("train_data.window", WINDOW)
    carry_state: bool = False  # the state along the whole clip (false: a fresh window per output, as its authors test)
    weights: str = released_weights()  # the authors' released checkpoint ('': train it here; docs/weights.md)


class BIN(nn.Module):
    """BIN₄; clip inference runs ``forward`` on a fresh window per output (the authors' test protocol)."""

    window = WINDOW
    centre = KEPT  # the slot clip inference keeps (alabench.inference)
    published_parameters = 11_441_668  # the authors' bin_stage4_lstm (counted by instantiating it)

    def __init__(self, options: Options) -> None:
        super().__init__()
        # recorded in the checkpoint (and the resume key) by the train stage: carry_state changes only
        # clip inference, so it is left out and switching it resumes a finished run instead of retraining
        self.config = dataclasses.replace(options, carry_state=Options.carry_state)
        self.carry_state = options.carry_state
        f, g = max(4, round(96 * options.width)), max(2, round(32 * options.width))
        self.levels = nn.ModuleList(FrameRDN(n, f, g, options.layers, options.blocks) for n in (2, 3, 5, 5))
        # one cell per instant handed on: I4, I6, I8, I5, I7, I6' (3 -> 3 channels, as published)
        self.cells = nn.ModuleList(ConvLSTMCell(3, 3) for _ in range(6)) if options.recurrent else None

    def pyramid(self, b: list[torch.Tensor], prev: list[torch.Tensor] | None) -> dict[str, torch.Tensor]:
        """One pass on five (N, 3, H, W) inputs; ``prev``: the previous pass's six hand-on frames."""
        r1, r2, r3, r4 = self.levels
        i2, i4, i6, i8 = r1(b[0], b[1]), r1(b[1], b[2]), r1(b[2], b[3]), r1(b[3], b[4])
        p4, p6, p8 = prev[:3] if prev is not None else (i2, i4, i6)
        i3, i5, i7 = r2(p4, i2, i4), r2(p6, i4, i6), r2(p8, i6, i8)
        p5, p7 = prev[3:5] if prev is not None else (i3, i5)
        i4b, i6b = r3(p5, b[1], i3, i5, b[2]), r3(p7, b[2], i5, i7, b[3])
        i5c = r4(prev[5] if prev is not None else i4, i4, i4b, i6b, i6)
        return {"i2": i2, "i4": i4, "i6": i6, "i8": i8, "i3": i3, "i5": i5, "i7": i7, "i4b": i4b, "i6b": i6b,
                "i5c": i5c}

    def hand_on(self, out: dict[str, torch.Tensor], cells: Any) -> tuple[list[torch.Tensor], Any]:
        """What a pass hands to the next (one input later): its estimates of the next pass's
        instants, through the ConvLSTM cells (whose own states ``cells`` follow the video)."""
        prev = [out[k] for k in HAND_ON]
        if self.cells is None:
            return prev, None
        stepped = [cell(x, c) for cell, x, c in zip(self.cells, prev, cells or [None] * len(prev))]
        return [h for h, _ in stepped], [c for _, c in stepped]

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, W, 3, H, W) inputs in [0, 1], 2 <= W <= 6 -> (deblur (B, W, ...), interp (B, W-1, ...))."""
        n, w, _, h, wd = frames.shape
        if not 2 <= w <= WINDOW:
            raise ValueError(f"bin takes windows of 2 to {WINDOW} inputs, got {w}")
        shift = CENTRE - (w - 1) // 2  # the given window's centre lands on slot CENTRE
        padded, _ = pad_frames(frames)
        slots = [padded[:, min(max(t - shift, 0), w - 1)] for t in range(WINDOW)]
        first = self.pyramid(slots[:5], None)
        second = self.pyramid(slots[1:], self.hand_on(first, None)[0])
        deblur = [slots[0], first["i3"], first["i5c"], second["i5c"], second["i7"], slots[5]]
        interp = [first["i2"], first["i4b"], first["i6b"], second["i6b"], second["i8"]]
        deblur_out = torch.stack(deblur[shift:shift + w], 1)[..., :h, :wd]
        interp_out = torch.stack(interp[shift:shift + w - 1], 1)[..., :h, :wd]
        # What the published loss reads (nothing kept outside training): every pyramid output and where it lies.
        self.extras = {"passes": {"first": first, "second": second}, "shift": shift, "size": (h, wd)} if self.training else {}
        if not self.training:  # frames once trained; unbounded for the loss
            deblur_out, interp_out = deblur_out.clamp(0, 1), interp_out.clamp(0, 1)
        # the inputs' slots with no estimate of their own (the window's ends) come back as given
        return deblur_out, interp_out

    def scored_slots(self, window: int) -> tuple[list[int], list[int]]:
        """The slots of ``forward``'s outputs on a ``window``-input window that are estimates (deblurred,
        interpolated): the padded six's end slots 0 and 5 return their inputs and are not scored."""
        shift = CENTRE - (window - 1) // 2
        return [j for j in range(window) if 0 < j + shift < WINDOW - 1], list(range(window - 1))


class CarriedBIN(BIN):
    """BIN with ``carry_state: true``: clip inference carries the recurrent state along the whole clip."""

    def step(self, window: torch.Tensor, state: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Clip inference (alabench.methods.Recurrent): on the window of inputs k-3 .. k+2, one pass
        on slots 1-5 (centred on slot 3, input k) fed by the previous window's hand-on."""
        padded, (h, w) = pad_frames(window)
        prev, cells = state if state is not None else (None, None)
        out = self.pyramid([padded[:, t] for t in range(KEPT - 2, KEPT + 3)], prev)
        # frames once trained, clamped as ALANet's and CAIN's are; the state carries the raw estimates on
        frames = [out[k][..., :h, :w].clamp(0, 1) for k in ("i5c", "i6b")]
        return frames[0], frames[1], self.hand_on(out, cells)


def charbonnier(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The authors' CharbonnierLoss: mean of sqrt(d^2 + 1e-6)."""
    return torch.sqrt((x.float() - y.float()) ** 2 + 1e-6).mean()


class BINLoss(nn.Module):
    """BIN's published loss (see the module docstring); reads ``BIN.extras`` of the training forward."""

    def forward(self, outputs: list[torch.Tensor], targets: list[torch.Tensor],
                extras: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
        if not extras:
            raise ValueError("BINLoss needs the model's pyramid outputs (BIN.extras of a training forward)")
        shift, (h, w) = extras["shift"], extras["size"]
        inputs, middles = targets[0].shape[1], targets[1].shape[1]

        def target(position: int) -> torch.Tensor | None:
            """The sharp frame at ``position`` half-input steps from slot 0, if the window has it."""
            k, odd = divmod(position - 2 * shift, 2)
            if odd:
                return targets[1][:, k] if 0 <= k < middles else None
            return targets[0][:, k] if 0 <= k < inputs else None

        supervised = [charbonnier(extras["passes"][name][key][..., :h, :w], sharp)
                      for name, keys in SUPERVISED for key in keys
                      if (sharp := target(POSITION[key] + (2 if name == "second" else 0))) is not None]
        first = extras["passes"]["first"]
        consistency = [charbonnier(first[a][..., :h, :w], first[b][..., :h, :w]) for a, b in CONSISTENT]
        terms = supervised + consistency
        return {"charbonnier": sum(supervised) / len(supervised), "consistency": sum(consistency) / len(consistency),
                "total": sum(terms) / len(terms)}


def build(params: Params, options: Options) -> BIN:
    return (CarriedBIN if options.carry_state else BIN)(options)


def loss(params: Params, options: Options) -> nn.Module:
    return shared_loss(params) if options.loss == "shared" else BINLoss()


register(Method(
    name="bin",
    tasks=TASKS,
    trains=True,
    build=build,
    options=Options,
    loss=loss,
    description="BIN (Shen et al. 2020): pyramid of residual dense networks, ConvLSTM between passes; window 6, "
                "a fresh one per output as its authors test (carry_state: the state along the clip); published "
                "size 11,441,668 parameters",
))
