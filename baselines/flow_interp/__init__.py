"""Classical frame interpolation: bidirectional optical flow (OpenCV), warping, occlusion-aware blending.

For each pair of inputs (I0, I1), nothing learned:

1. flows F01 and F10 on the grey frames (DIS, Kroeger et al. 2016, or Farnebäck 2003);
2. the flows from the middle frame back to each input, by Super SloMo's linear approximation at
   t = 1/2: F_t0 = (F10 - F01) / 4, F_t1 = (F01 - F10) / 4;
3. occlusion: a pixel of I0 whose forward flow is not undone by the backward flow at its target
   (|F01(p) + F10(p + F01(p))|^2 > a (|F01|^2 + |F10|^2) + b, Sundaram et al. 2010) is not seen in
   I1; that mask, carried to the middle frame, gives each input's visibility V0, V1 there;
4. I_t = (V0 I0(p + F_t0) + V1 I1(p + F_t1)) / (V0 + V1), bilinear backward warps; where neither
   input sees a pixel, the plain mean of the two warps.

Deblurring is not addressed: the deblurred frames are the inputs.
"""

from dataclasses import dataclass
from typing import Annotated, Literal

import cv2
import numpy as np
import torch
from torch import nn

from alabench.config import Params, Range
from alabench.methods import Method, register


@dataclass(frozen=True)
class Options:
    algorithm: Literal["dis", "farneback"] = "dis"
    dis_preset: Literal["ultrafast", "fast", "medium"] = "medium"
    consistency_rel: Annotated[float, Range(0.0, 1.0)] = 0.01  # a of the occlusion test
    consistency_abs: Annotated[float, Range(0.0, 100.0)] = 0.5  # b of the occlusion test, px^2


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def _warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: out(p) = image(p + flow(p)), bilinear, borders replicated."""
    xs, ys = _grid(*flow.shape[:2])
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class FlowInterp(nn.Module):
    window = 2  # pairs; any W >= 2 works

    def __init__(self, options: Options) -> None:
        super().__init__()
        self.config = options  # recorded in the checkpoint by the train stage

    def flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(H, W, 2) float32 flow with a(p) ~ b(p + flow(p)), from grey uint8 frames."""
        if self.config.algorithm == "dis":
            preset = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                      "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[self.config.dis_preset]
            return cv2.DISOpticalFlow_create(preset).calc(a, b, None)
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 3, 5, 1.2, 0)

    def occluded(self, f_ab: np.ndarray, f_ba: np.ndarray) -> np.ndarray:
        """1 where a pixel of frame a has no consistent match in frame b (forward-backward check)."""
        back = _warp(f_ba, f_ab)
        mismatch = np.square(f_ab + back).sum(-1)
        bound = self.config.consistency_rel * (np.square(f_ab).sum(-1) + np.square(back).sum(-1))
        return (mismatch > bound + self.config.consistency_abs).astype(np.float32)

    def middle(self, i0: np.ndarray, i1: np.ndarray) -> np.ndarray:
        """The frame midway between two (H, W, 3) float32 frames in [0, 1]."""
        grey = [cv2.cvtColor(np.round(f * 255).clip(0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in (i0, i1)]
        f01, f10 = self.flow(grey[0], grey[1]), self.flow(grey[1], grey[0])
        ft0, ft1 = (f10 - f01) / 4, (f01 - f10) / 4
        v0 = 1 - _warp(self.occluded(f01, f10), ft0)
        v1 = 1 - _warp(self.occluded(f10, f01), ft1)
        w0, w1 = _warp(i0, ft0), _warp(i1, ft1)
        total = (v0 + v1)[..., None]
        blend = (v0[..., None] * w0 + v1[..., None] * w1) / np.maximum(total, 1e-6)
        return np.where(total > 1e-3, blend, (w0 + w1) / 2)

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = frames.detach().float().clamp(0, 1).movedim(-3, -1).cpu().numpy()  # (B, W, H, W, 3)
        middles = [[self.middle(clip[t], clip[t + 1]) for t in range(len(clip) - 1)] for clip in images]
        interp = torch.from_numpy(np.asarray(middles, dtype=np.float32)).movedim(-1, -3)
        return frames, interp.to(frames.device, frames.dtype)


def build(params: Params, options: Options) -> FlowInterp:
    return FlowInterp(options)


register(Method(
    name="flow_interp",
    tasks=frozenset({"interpolate"}),
    trains=False,
    build=build,
    options=Options,
    description="OpenCV optical flow both ways, backward warping, occlusion-aware blending (no learning)",
))
