"""ALANet (paper §4): encoder E, adaptive latent attention M, generator G.

Batch layout: ``frames`` (B, W, 3, H, W_px) in [0, 1] -> ``deblur`` (B, W, 3, H, W_px) and
``interp`` (B, W-1, 3, H, W_px), output k of ``interp`` lying midway between inputs k and k+1.

Latents (paper eq. 3-6), with F the channel attention of RCAN (ref. [33]):

* M_S(x_i|x_i) = x_i ⊗ F(x_i);  M_C(x_j|x_i) = x_j ⊗ F(x_i)
* deblur, eq. 5:  z_i = M_S(x_i|x_i) + Σ_{j ∈ Q(i)} M_C(x_j|x_i),  Q(i) = the frames of the window
  within ⌊W/2⌋ of i (the integers of [i − W/2, i) ∪ (i, i + W/2]), others excluded
* interpolation, eq. 6:  ẑ_i = M_S(x_i|x_i) + M_C(x_i|x_{i+1}) + M_S(x_{i+1}|x_{i+1}) + M_C(x_{i+1}|x_i)

Choices the paper leaves open (README, "Protocol"):

* Every term has its own F, as in the authors' code, and deblurring and interpolation have separate
  sets; but an F is indexed by the *offset* j − i, not by the absolute slot in the window, so a
  frame's deblurred output does not depend on where the window happens to start.
* ``attention``: ``both`` (ALANET), ``self`` (drops every M_C term), ``cross`` (drops every M_S).
* ``generators``: ``separate`` (two decoders, deblur and interpolation: the authors' model, 30.6M
  parameters at width 1) or ``shared`` (one G, as the paper's text says).
* An interpolated frame's skips are the mean of its two neighbours' skips (authors' code).
* ``residual``: G predicts a correction added to the input frame (deblur) or to the mean of the
  two neighbours (interpolation); the last layer starts at zero, so an untrained model returns
  the blurry input. Off = G predicts the frame itself.
* Any frame size: frames are padded (replicate) to a multiple of the stride (32) and cropped back.
* ``levels``: the encoder's downsampling levels (5, the authors'; the latent at stride 32). Fewer
  levels put the latent at a finer stride: on the CPU's 192×128 frames 4 levels give it 8×12 cells,
  the paper's 11×20 at 640×352 in proportion, where 5 leave 4×6 (docs/training.md, "Is the latent used?").

Knock-outs (``alabench.methods.Knockouts``; evaluation scores each one, ``alabench.probes``): while
``with model.knockout(name):`` is active, ``forward`` and the Incremental path alike run with one part
switched off (``KNOCKOUTS``; a variant declares those it has, ``ALANet.knockouts``):

* ``latent_zeroed``: the generators receive a zero latent (z_i and ẑ alike), the skips unchanged;
* ``cross_knocked_out``: every M_C(x_j|x_i) becomes M_C(x_i|x_i) = x_i ⊗ F(x_i), the gated latent
  replaced by the gating frame's own, so no term mixes two frames' latents: a frame's deblurred
  output no longer depends on its neighbours (declared where there are M_C terms);
* ``self_knocked_out``: every M_S term dropped, the M_C terms kept (declared where both exist: without
  M_C terms it would zero the latent, ``latent_zeroed`` already);
* ``gates_fixed``: every channel-attention gate F(·) returns 0.5 (declared where there are gates).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from alabench.config import Range
from models.unet import BASE_CHANNELS, STRIDE, Encoder, Generator, channel_plan, init_weights, initialise_by_name

Attention = Literal["both", "self", "cross"]

KNOCKOUTS = {  # name -> what it switches off (the module docstring defines each)
    "latent_zeroed": "the latent handed to the generators is zero (deblur z_i and interpolation ẑ)",
    "cross_knocked_out": "cross-attention off: each M_C(x_j|x_i) gates the frame's own latent x_i, not x_j",
    "self_knocked_out": "self-attention off: every M_S term dropped, the M_C terms kept",
    "gates_fixed": "every channel-attention gate F(·) returns 0.5",
}


@dataclass(frozen=True)
class ALANetOptions:
    """The knobs of the ALANet family (`alanet`, `alanet_self`, `alanet_cross`, `unet`), read from each
    method's own ``methods.<name>`` entry, so that a method's stages depend on its slice of the params
    alone. Defaults: the authors' model (the module docstring explains each choice)."""

    width: Annotated[float, Range(0.03125, 4.0)] = 1.0  # channel multiplier; 1.0 = 32-64-128-256-512-512
    reduction: Annotated[int, Range(1, 256)] = 16  # r of the channel attention
    generators: Literal["separate", "shared"] = "separate"
    residual: bool = True
    levels: Annotated[int, Range(1, 5)] = 5  # encoder downsampling levels; the latent at stride 2**levels (authors: 5)


@dataclass(frozen=True)
class ALANetConfig:
    window: int = 3
    width: float = 1.0
    attention: Attention = "both"
    reduction: int = 16
    generators: Literal["separate", "shared"] = "separate"
    residual: bool = True
    levels: int = len(BASE_CHANNELS) - 1  # downsampling levels: the latent lies at stride 2**levels (authors: 5)


def pad_frames(frames: torch.Tensor, stride: int = STRIDE) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad (..., H, W) to multiples of ``stride`` (default: the authors' encoder, 32); returns
    the original size, to crop the outputs back to."""
    h, w = frames.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        lead = frames.shape[:-3]
        flat = F.pad(frames.reshape(-1, *frames.shape[-3:]), (0, pw, 0, ph), mode="replicate")
        frames = flat.reshape(*lead, *flat.shape[-3:])
    return frames, (h, w)


class ChannelAttention(nn.Module):
    """F: global average pool -> 1×1 conv C -> C/r -> ReLU -> 1×1 conv -> C -> sigmoid; (N, C, 1, 1) in (0, 1)."""

    knocked_out: str | None = None  # set by ALANet.knockout

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.knocked_out == "gates_fixed":
            return x.new_full((*x.shape[:2], 1, 1), 0.5)
        return self.gate(F.adaptive_avg_pool2d(x, 1))


def _offset_key(d: int) -> str:
    return f"{'m' if d < 0 else 'p'}{abs(d)}"


class LatentAttention(nn.Module):
    """M: the deblur and interpolation latents of eq. 5 and 6 from encoder latents x_i."""

    knocked_out: str | None = None  # set by ALANet.knockout

    def __init__(self, channels: int, window: int, attention: Attention, reduction: int) -> None:
        super().__init__()
        self.radius = window // 2
        self.use_self = attention in ("both", "self")
        self.use_cross = attention in ("both", "cross")

        def bank(keys: list[str]) -> nn.ModuleDict:
            return nn.ModuleDict({k: ChannelAttention(channels, reduction) for k in keys})

        offsets = [d for d in range(-self.radius, self.radius + 1) if d != 0]
        self.deblur_self = bank(["self"] if self.use_self else [])
        self.deblur_cross = bank([_offset_key(d) for d in offsets] if self.use_cross else [])
        # interpolation between a left frame a and a right frame b
        self.interp_self = bank(["a", "b"] if self.use_self else [])
        self.interp_cross = bank(["a_given_b", "b_given_a"] if self.use_cross else [])

    @property
    def self_terms(self) -> bool:
        """The M_S terms take part: the variant has them and they are not knocked out."""
        return self.use_self and self.knocked_out != "self_knocked_out"

    def cross(self, gate: ChannelAttention, x_j: torch.Tensor, x_i: torch.Tensor) -> torch.Tensor:
        """M_C(x_j|x_i) = x_j ⊗ F(x_i); with cross-attention knocked out x_j := x_i."""
        return (x_i if self.knocked_out == "cross_knocked_out" else x_j) * gate(x_i)

    def deblur(self, latents: list[torch.Tensor], i: int) -> torch.Tensor:
        """z_i (eq. 5) from the latents of the window; only frames within the radius take part."""
        x_i = latents[i]
        terms = [x_i * self.deblur_self["self"](x_i)] if self.self_terms else []
        if self.use_cross:
            for j in range(max(0, i - self.radius), min(len(latents), i + self.radius + 1)):
                if j != i:
                    terms.append(self.cross(self.deblur_cross[_offset_key(j - i)], latents[j], x_i))
        return torch.stack(terms).sum(0)

    def interp(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        """ẑ (eq. 6) between consecutive latents x_a = x_i and x_b = x_{i+1}."""
        terms = []
        if self.self_terms:
            terms += [x_a * self.interp_self["a"](x_a), x_b * self.interp_self["b"](x_b)]
        if self.use_cross:
            terms += [self.cross(self.interp_cross["a_given_b"], x_a, x_b),
                      self.cross(self.interp_cross["b_given_a"], x_b, x_a)]
        return torch.stack(terms).sum(0)


def _initialise(name: str, module: nn.Module) -> None:
    """He init for the U-Net's convolutions (``init_weights``), PyTorch's default for the attention's."""
    if name.startswith("attention."):
        module.reset_parameters()  # type: ignore[operator]
    else:
        init_weights(module)


class ALANet(nn.Module):
    knocked_out: str | None = None  # the knock-out active now (``knockout``), None when intact

    def __init__(self, config: ALANetConfig) -> None:
        super().__init__()
        if config.window < 2:
            raise ValueError(f"ALANet needs a window of at least 2 frames, got {config.window}")
        self.config = config
        self.window = config.window
        channels = channel_plan(config.width, config.levels)
        self.stride = 2 ** config.levels
        self.encoder = Encoder(channels)
        self.attention = LatentAttention(channels[-1], config.window, config.attention, config.reduction)
        self.deblur_generator = Generator(channels)
        self.interp_generator = Generator(channels) if config.generators == "separate" else self.deblur_generator
        initialise_by_name(self, _initialise)
        if config.residual:
            for gen in {self.deblur_generator, self.interp_generator}:
                nn.init.zeros_(gen.out.weight)
                nn.init.zeros_(gen.out.bias)

    # -- knock-outs (alabench.methods.Knockouts) ------------------------------------------------------

    def knockouts(self) -> dict[str, str]:
        """The knock-outs this variant has (module docstring): name -> what it switches off."""
        own, cross = getattr(self.attention, "use_self", False), getattr(self.attention, "use_cross", False)
        names = ["latent_zeroed", *(["cross_knocked_out"] if cross else []),
                 *(["self_knocked_out"] if own and cross else []), *(["gates_fixed"] if own or cross else [])]
        return {name: KNOCKOUTS[name] for name in names}

    @contextmanager
    def knockout(self, name: str) -> Iterator[None]:
        """Switch off the part ``name`` names while the block runs (forward and Incremental alike)."""
        if name not in self.knockouts():
            raise KeyError(f"{type(self).__name__} has no knock-out {name!r}; it has {sorted(self.knockouts())}")
        if self.knocked_out is not None:
            raise RuntimeError(f"knock-out {self.knocked_out!r} is active already; one at a time")
        parts = [m for m in self.modules() if isinstance(m, (ALANet, LatentAttention, ChannelAttention))]
        for part in parts:
            part.knocked_out = name
        try:
            yield
        finally:
            for part in parts:
                part.knocked_out = None

    def _latent(self, z: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(z) if self.knocked_out == "latent_zeroed" else z

    # -- the three steps ------------------------------------------------------------------------------

    def pad(self, frames: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Replicate-pad (..., H, W) to multiples of this encoder's stride; returns the original size."""
        return pad_frames(frames, self.stride)

    def encode(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) padded frames -> per-level features; the last entry is the latent."""
        return self.encoder(frames)

    def _frames(self, out: torch.Tensor) -> torch.Tensor:
        """Outputs as frames: unbounded while training (the loss sees them whole), in [0, 1] otherwise
        (a model that predicts frames directly, ``residual: false``, starts far outside)."""
        return out if self.training else out.clamp(0, 1)

    def generate_deblur(self, z: torch.Tensor, skips: list[torch.Tensor], frame: torch.Tensor) -> torch.Tensor:
        out = self.deblur_generator(self._latent(z), skips)
        return self._frames(out + frame if self.config.residual else out)

    def generate_interp(self, z: torch.Tensor, skips_a: list[torch.Tensor], skips_b: list[torch.Tensor],
                        frame_a: torch.Tensor, frame_b: torch.Tensor) -> torch.Tensor:
        skips = [(a + b) / 2 for a, b in zip(skips_a, skips_b)]
        out = self.interp_generator(self._latent(z), skips)
        return self._frames(out + (frame_a + frame_b) / 2 if self.config.residual else out)

    # -- one frame's encoding, one output: clip inference encodes each input once --------------------
    # (alabench.methods.Incremental; equal to ``forward``'s outputs for the same window)

    def encode_frames(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) -> [frames, *skips, latent]: all that a frame's outputs need of it."""
        return [frames, *self.encode(self.pad(frames)[0])]

    def deblur_at(self, window: list[list[torch.Tensor]], i: int) -> torch.Tensor:
        """(N, 3, H, W): slot i deblurred, from the encode_frames of a window's W slots."""
        frame, *skips, _ = window[i]
        z = self.attention.deblur([slot[-1] for slot in window], i)
        out = self.generate_deblur(z, skips, self.pad(frame)[0])
        return out[..., :frame.shape[-2], :frame.shape[-1]]

    def interp_at(self, window: list[list[torch.Tensor]], i: int) -> torch.Tensor:
        """(N, 3, H, W): the frame between slots i and i+1."""
        (a, *skips_a, x_a), (b, *skips_b, x_b) = window[i], window[i + 1]
        out = self.generate_interp(self.attention.interp(x_a, x_b), skips_a, skips_b,
                                   self.pad(a)[0], self.pad(b)[0])
        return out[..., :a.shape[-2], :a.shape[-1]]

    # -- a whole window ------------------------------------------------------------------------------

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, w = frames.shape[:2]
        if w != self.config.window:
            raise ValueError(f"expected windows of {self.config.window} frames, got {w}")
        padded, (h, wd) = self.pad(frames)
        by_time = padded.transpose(0, 1)  # (W, B, 3, H, W): frame t of every window together
        feats = [f.unflatten(0, (w, b)) for f in self.encode(by_time.flatten(0, 1))]  # one pass, all frames
        latents, skips = list(feats[-1]), feats[:-1]

        z = torch.cat([self.attention.deblur(latents, t) for t in range(w)])
        deblur = self.generate_deblur(z, [s.flatten(0, 1) for s in skips], by_time.flatten(0, 1))
        z_hat = torch.cat([self.attention.interp(latents[t], latents[t + 1]) for t in range(w - 1)])
        interp = self.generate_interp(z_hat, [s[:-1].flatten(0, 1) for s in skips],
                                      [s[1:].flatten(0, 1) for s in skips],
                                      by_time[:-1].flatten(0, 1), by_time[1:].flatten(0, 1))
        deblur = deblur.unflatten(0, (w, b)).transpose(0, 1)
        interp = interp.unflatten(0, (w - 1, b)).transpose(0, 1)
        return deblur[..., :h, :wd], interp[..., :h, :wd]
