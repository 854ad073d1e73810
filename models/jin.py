"""Jin, Hu and Favaro, "Learning to Extract Flawless Slow Motion from Blurry Videos" (CVPR 2019).

Two networks, written from the layout of the authors' released model and test code
(MeiguangJin/slow-motion, ``model.py`` and ``test_demo.py`` at 52595b5; read, not copied; their
training code was never released): **DeblurNet** turns four consecutive blurry inputs into sharp
*keyframes*, **InterpNet** makes the frames between two keyframes from them and the two blurry inputs
around them. Both are residual dense networks, of the design BIN's levels share (``models.rdn``):
pixel unshuffle ×2 of the concatenated frames, a 5×5 and a 3×3 convolution, residual dense blocks
(``models.rdn.DenseBlock``), global feature fusion, a 3×3 convolution to 256 channels, pixel shuffle
×2 and a 3×3 convolution to the frames, each added to a frame it corrects.

Mapped onto this suite's 2× task (:class:`Jin`): on the window B0, B1, B2, B3, DeblurNet gives the
keyframes K1, K2, the sharp frames at the centres of B1 and B2 (each a correction of its own blurry
input), and InterpNet(B1, K1, K2, B2) the frame midway between them (a correction of the keyframes'
mean), the inputs in the authors' order. Clip inference keeps slot 1 (input k on the window of inputs
k-1 .. k+2, replicate-padded at a clip's ends): a fresh window per output, no state carried.

Differences from the published model, said plainly:

* the authors' DeblurNet makes *three* keyframes per window for their 10× setting (output channels
  64 → 9, added to B1, B1, B2; their test writes ten frames per input, the keyframes at offsets 0, 4
  and 6, and fills the rest by InterpNet applied recursively, the last gap with the next window's
  first keyframe); here, for one frame between inputs, two keyframes at the inputs' centres
  (64 → 6) and one InterpNet call. At ``width`` 1.0 DeblurNet thus has 1,731 parameters
  fewer than theirs (3 × (64·9 + 1)): 9,636,934 against 9,638,665; InterpNet has theirs, 1,173,827;
  together 10,810,761 against 10,812,492 (counted by instantiating their ``RDN_residual_deblur``
  and ``RDN_residual_interp``);
* each network's last convolution starts at zero, so an untrained model returns the blurry inputs
  as keyframes and their mean as the middle (the blurry-input baseline), as the other methods here;
* ``width`` scales every network's features, growth and the 256 upsampling channels; the blocks per
  network are knobs (published: 20 of 5 convolutions in DeblurNet, 6 of 4 in InterpNet);
* both networks are trained jointly from the first step, by one loss on the keyframes and the
  middles (:class:`EstimatedSlots`); the published loss terms and any staged schedule are not in
  the released code and are not reproduced.
"""

from __future__ import annotations

import torch
from torch import nn

from models.alanet import pad_frames
from models.rdn import DenseTrunk

WINDOW = 4  # DeblurNet's blurry inputs
CENTRE = 1  # the slot whose keyframe (and the middle after it) clip inference keeps
UP = 64  # channels after the pixel shuffle at width 1.0 (the authors' 256 before it)


def scaled(channels: int, width: float, least: int) -> int:
    return max(least, round(channels * width))


class DeblurNet(nn.Module):
    """Blurry B0, B1, B2, B3 (N, 3, H, W), H and W even -> keyframes K1, K2: the sharp frames at the
    centres of B1 and B2, each its blurry input plus a correction.

    Published (``width`` 1.0, ``blocks`` 20): 96 features, 20 blocks of 5 convolutions, growth 48;
    9,638,665 parameters with the authors' three keyframes, 9,636,934 with the two made here."""

    def __init__(self, width: float = 1.0, blocks: int = 20) -> None:
        super().__init__()
        self.trunk = DenseTrunk(WINDOW, 2, scaled(96, width, 4), scaled(48, width, 2), 5, blocks,
                                scaled(UP, width, 1))

    def forward(self, b0: torch.Tensor, b1: torch.Tensor, b2: torch.Tensor, b3: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        k1, k2 = self.trunk(b0, b1, b2, b3).chunk(2, 1)
        return k1 + b1, k2 + b2


class InterpNet(nn.Module):
    """Blurry B1, keyframes K1, K2, blurry B2 (N, 3, H, W) -> the frame midway between K1 and K2: their
    mean plus a correction (the authors apply it recursively for more frames between keyframes).

    Published (``width`` 1.0, ``blocks`` 6): 64 features, 6 blocks of 4 convolutions, growth 32;
    1,173,827 parameters."""

    def __init__(self, width: float = 1.0, blocks: int = 6) -> None:
        super().__init__()
        self.trunk = DenseTrunk(4, 1, scaled(64, width, 4), scaled(32, width, 2), 4, blocks, scaled(UP, width, 1))

    def forward(self, b1: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
        return self.trunk(b1, k1, k2, b2) + (k1 + k2) / 2


class Jin(nn.Module):
    """DeblurNet and InterpNet as one method on windows of 4 inputs (see the module docstring).

    ``forward`` on (B, W, 3, H, W) in [0, 1], 2 <= W <= 4 -> (deblur (B, W, ...), interp (B, W-1, ...)):
    a shorter window is replicate-padded to 4 with its centre on slot 1. Slots 1 and 2 are the
    keyframes and the middle between them InterpNet's; the window's other slots come back as the
    inputs (deblurred) and the mean of each pair (interpolated), which :meth:`scored_slots` leaves out."""

    window = WINDOW
    # the authors' two networks (9,638,665 + 1,173,827), counted by instantiating them
    published_parameters = 10_812_492

    def __init__(self, width: float = 1.0, deblur_blocks: int = 20, interp_blocks: int = 6) -> None:
        super().__init__()
        self.deblurnet = DeblurNet(width, deblur_blocks)
        self.interpnet = InterpNet(width, interp_blocks)
        self.extras: dict[str, tuple[list[int], list[int]]] = {}  # set by a training forward

    @staticmethod
    def shift(window: int) -> int:
        """Where a ``window``-input window starts in the padded four: its centre lands on slot 1."""
        return CENTRE - (window - 1) // 2

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, w, _, h, wd = frames.shape
        if not 2 <= w <= WINDOW:
            raise ValueError(f"jin takes windows of 2 to {WINDOW} inputs, got {w}")
        shift = self.shift(w)
        padded, _ = pad_frames(frames, 2)  # pixel unshuffle halves the frame
        b = [padded[:, min(max(t - shift, 0), w - 1)] for t in range(WINDOW)]
        k1, k2 = self.deblurnet(*b)
        middle = self.interpnet(b[1], k1, k2, b[2])
        deblur = torch.stack([b[0], k1, k2, b[3]], 1)[:, shift:shift + w, :, :h, :wd]
        interp = torch.stack([(b[0] + b[1]) / 2, middle, (b[2] + b[3]) / 2], 1)[:, shift:shift + w - 1, :, :h, :wd]
        # what the loss reads (EstimatedSlots): the slots that are estimates; nothing kept outside training
        self.extras = {"slots": self.scored_slots(w)} if self.training else {}
        if not self.training:  # frames once trained; unbounded for the loss
            deblur, interp = deblur.clamp(0, 1), interp.clamp(0, 1)
        return deblur, interp

    def scored_slots(self, window: int) -> tuple[list[int], list[int]]:
        """The slots of ``forward``'s outputs on a ``window``-input window that are estimates: the
        keyframes (slots 1, 2 of the padded four) and InterpNet's middle (between them)."""
        shift = self.shift(window)
        return ([j for j in range(window) if CENTRE <= j + shift <= CENTRE + 1],
                [j for j in range(window - 1) if j + shift == CENTRE])


class EstimatedSlots(nn.Module):
    """A training loss (``inner``: outputs, targets -> parts with ``total``) on the slots a window's
    module estimates (``extras["slots"]`` of its training forward) instead of every slot: the slots it
    hands back as given carry no gradient and would only dilute the loss."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, outputs: list[torch.Tensor], targets: list[torch.Tensor],
                extras: dict[str, tuple[list[int], list[int]]] | None = None) -> dict[str, torch.Tensor]:
        if not extras or "slots" not in extras:
            raise ValueError("EstimatedSlots needs the model's estimated slots (extras['slots'] of a training forward)")
        picked = [t[:, s] for t, s in zip(outputs, extras["slots"])]
        return self.inner(picked, [t[:, s] for t, s in zip(targets, extras["slots"])])
