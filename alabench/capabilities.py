"""The optional capabilities of a method's module, as protocols (re-exported by ``alabench.methods``).

A module needs none of them: each lets clip inference or evaluation do more with a module that has it
(encode each input once, hand a state along the clip, run two modules in a chain, switch parts off).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


Features = list[torch.Tensor]  # one frame's encoding, or a batch's (frames along dim 0)


@runtime_checkable
class Incremental(Protocol):
    """What a module offers so that clip inference computes each input's features once.

    Sliding windows hold each input W times; a module whose outputs come from per-frame features
    (an encoder's skips and latent) splits ``forward`` into these three, and clip inference then
    encodes every input once, keeps its features while a window still needs them, and decodes
    only the outputs it keeps. ``window`` is the list of the W slots' features, each slot's
    tensors stacked along dim 0 over a batch of N windows. The outputs must equal ``forward``'s
    on the same window to float rounding (``tests/test_inference.py`` checks the repo's).
    """

    def encode_frames(self, frames: torch.Tensor) -> Features:
        """(N, 3, H, W) frames in [0, 1] -> tensors whose dim 0 indexes the frames, no frame
        depending on another: all that deblur_at and interp_at need of them."""

    def deblur_at(self, window: list[Features], i: int) -> torch.Tensor:
        """(N, 3, H, W): the deblurred frame of slot ``i``."""

    def interp_at(self, window: list[Features], i: int) -> torch.Tensor:
        """(N, 3, H, W): the frame midway between slots ``i`` and ``i + 1``."""


@runtime_checkable
class Recurrent(Protocol):
    """A module whose windows hand a state on to the next window of the same clip (BIN's
    inter-pyramid ConvLSTM): clip inference calls ``step`` on the clip's windows in order, one at a
    time, with ``state`` None at the clip's start; ``forward`` (training, and the plain reference)
    sees each window alone."""

    def step(self, window: torch.Tensor, state: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """(1, W, 3, H, W) -> (slot c deblurred (1, 3, H, W), the middle of slots c and c+1
        (1, 3, H, W), the state for the next window), c = (W - 1) // 2."""


@runtime_checkable
class Chained(Protocol):
    """A module made of two methods' modules run one after the other (a cascade, alabench.cascade).

    ``chain = (first, second)``: clip inference runs ``first`` over the clip and ``second`` over
    first's deblurred frames clipped to [0, 1], and returns first's deblurred frames with second's
    interpolated ones, so each part makes one output per input and pair with its own window.
    ``forward`` must give what the parts give run window by window (``reuse=False``) one after the
    other (``tests/test_joint_competitors.py`` checks both)."""

    chain: tuple[nn.Module, nn.Module]


@runtime_checkable
class Knockouts(Protocol):
    """A module that can switch off parts of itself, one at a time: the mechanism probes.

    ``knockouts()`` names them (name -> one line saying what is switched off; names are identifiers);
    ``with module.knockout(name):`` runs ``forward`` and the :class:`Incremental` path alike with that
    part off, and puts it back on leaving the block, also on an error. A knock-out must change the
    outputs of an untrained module whose every part reaches them (``tests/test_probes.py``); one that
    changes nothing measurable on the trained module is a part that is not used.
    """

    def knockouts(self) -> dict[str, str]:
        """Name -> what it switches off (one line), for this module as built (a variant declares those it has)."""

    def knockout(self, name: str) -> AbstractContextManager[None]:
        """A context in which part ``name`` is off; an unknown name raises KeyError naming the known ones."""
