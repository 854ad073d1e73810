"""Deblur-then-interpolate cascades, composed from any two methods by params alone.

``evaluate.cascades: [{deblur: nafnet, interpolate: superslomo}]`` makes the method
``cascade_nafnet_superslomo``: every input is deblurred by the first method, then each pair of
consecutive *deblurred* frames is interpolated by the second. It trains nothing: each component is
built as ``methods.<component>`` says and, if it trains, loads its own checkpoint of each seed (the
`evaluate_cascade` stage depends on both components' checkpoint folders), so nothing is trained
twice. This is the "deblur, then interpolate" row that every joint method argues against.

An interpolator trained on blurry inputs sees deblurred frames only in the cascade, which handicaps
it. So every cascade has a twin, ``cascade_nafnet_superslomo_tuned``: from both components'
checkpoints of a seed, the interpolator is fine-tuned for ``tune_epochs`` on the frozen deblurrer's
outputs (the `tune_cascade` stage, through the train stage's code: one run per seed), and the twin
is scored with the result. The deblurrer is never trained again.
"""

from __future__ import annotations

import torch
from torch import nn

from alabench.config import CascadeParams, ParamError, Params
from alabench.inference import kept_slot, window_indices
from alabench.methods import TASKS, Discovery, Method, MethodError, build_model, get_method


class Cascade(nn.Module):
    """(B, W, 3, H, W) -> (the inputs deblurred by ``deblur`` and clipped to [0, 1], the middles of
    those by ``interpolate``).

    Each component sees the windows it was made for: deblurred frame j comes from the ``deblur``
    window centred on input j, middle j from the ``interpolate`` window centred on deblurred frame
    j, both replicate-padded at the window's ends as clip inference pads a clip's. ``window`` is
    the smallest whose kept slot (its centre) needs no padding inside the window, so over a clip
    ``forward`` gives what the two components give run one after the other window by window. Clip
    inference does better (``chain``): each part over the whole clip, each input deblurred once,
    with any part's own clip-level reuse or recurrence.
    """

    def __init__(self, deblur: tuple[str, nn.Module], interpolate: tuple[str, nn.Module],
                 frozen_deblur: bool = False) -> None:
        super().__init__()
        (self.deblur_name, d), (self.interp_name, i) = deblur, interpolate
        self.frozen_deblur = frozen_deblur  # the tuned twin: only the interpolator learns
        d.requires_grad_(not frozen_deblur)
        self.parts = nn.ModuleDict({self.deblur_name: d, self.interp_name: i})  # by method name: their checkpoints
        wd, wi = int(d.window), int(i.window)
        self.kept = kept_slot(d), kept_slot(i)  # the slot of each part's window whose outputs clip inference keeps
        w = wd + wi - 1
        while not self._fits(w, wd, wi, *self.kept):
            w += 1
        self.window = w

    def train(self, mode: bool = True) -> Cascade:
        """A frozen deblurrer stays in eval mode (as it is scored) while the interpolator trains."""
        super().train(mode)
        if self.frozen_deblur:
            self.parts[self.deblur_name].eval()
        return self

    @property
    def chain(self) -> tuple[nn.Module, nn.Module]:
        """alabench.methods.Chained: clip inference runs the two parts over the clip in turn."""
        return self.parts[self.deblur_name], self.parts[self.interp_name]

    @staticmethod
    def _fits(w: int, wd: int, wi: int, cd: int, ci: int) -> bool:
        """Whether the inputs that slot c's outputs depend on all lie inside a window of ``w``."""
        c = (w - 1) // 2
        return c - ci - cd >= 0 and c - ci - cd + wd + wi - 2 <= w - 1

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d, i = self.parts[self.deblur_name], self.parts[self.interp_name]
        b, w = frames.shape[:2]
        cd, ci = self.kept
        windows = torch.stack([frames[:, window_indices(j, w, d.window, cd)] for j in range(w)], 1)
        # clipped as the deblurred frames a real cascade hands on (saved images) would be
        deblurred = d(windows.flatten(0, 1))[0][:, cd].unflatten(0, (b, w)).clamp(0, 1)
        windows = torch.stack([deblurred[:, window_indices(j, w, i.window, ci)] for j in range(w - 1)], 1)
        interp = i(windows.flatten(0, 1))[1][:, ci].unflatten(0, (b, w - 1))
        return deblurred, interp


def cascade_method(spec: CascadeParams, found: Discovery) -> Method:
    """The :class:`Method` of one ``evaluate.cascades`` entry; its ``uses`` = the components that train."""
    where = f"evaluate.cascades entry {spec.name}"
    if spec.deblur == spec.interpolate:
        raise ParamError(f"{where}: deblur and interpolate both name {spec.deblur}; a method that does both is "
                         "evaluated alone")
    parts = {}
    for task, name in (("deblur", spec.deblur), ("interpolate", spec.interpolate)):
        try:
            parts[task] = get_method(name, found)
        except MethodError as err:
            raise MethodError(f"{where}: {task}: {err}") from None
        if task not in parts[task].tasks:
            capable = [m for m, meth in found.methods.items() if task in meth.tasks]
            raise ParamError(f"{where}: {name} does not address {task} (it addresses {', '.join(sorted(parts[task].tasks))}); "
                             f"methods that do: {', '.join(capable)}")
    d, i = parts["deblur"], parts["interpolate"]

    def build(params: Params, options: None) -> Cascade:  # no options of its own: each part reads its own
        return Cascade((d.name, build_model(d, params)), (i.name, build_model(i, params)))

    return Method(name=spec.name, tasks=TASKS, trains=False, build=build,
                  uses=tuple(m.name for m in (d, i) if m.trains),
                  description=f"{d.name} deblurs every input, then {i.name} interpolates between the deblurred frames")


def tuned_cascade_method(spec: CascadeParams, found: Discovery) -> Method:
    """The ``_tuned`` twin of a cascade: it trains (its checkpoint holds both parts, the interpolator
    fine-tuned), starting from both components' checkpoints of the same seed (``uses``), with the
    deblurrer frozen; the shared loss (eq. 8), whose deblurring term the frozen part keeps constant."""
    plain = cascade_method(spec, found)
    d, i = (found.methods[n] for n in (spec.deblur, spec.interpolate))

    def build(params: Params, options: None) -> Cascade:
        return Cascade((d.name, build_model(d, params)), (i.name, build_model(i, params)), frozen_deblur=True)

    return Method(name=spec.tuned_name, tasks=TASKS, trains=True, build=build, uses=plain.uses,
                  description=f"{plain.description}, {i.name} fine-tuned for {spec.tune_epochs} epoch(s) on "
                              f"{d.name}'s outputs")


def cascade_spec(name: str, params: Params) -> CascadeParams | None:
    """The ``evaluate.cascades`` entry that makes ``name``, itself or its ``_tuned`` twin (None: no entry)."""
    return next((c for c in params.evaluate.cascades if name in (c.name, c.tuned_name)), None)


def find_cascade(name: str, params: Params, found: Discovery, dataset: str) -> Method | None:
    """The cascade ``name`` of ``params.evaluate.cascades`` (or its ``_tuned`` twin), checked for the
    `evaluate_cascade` and `tune_cascade` stages (None when no entry makes that name): each component
    that trains must be trained on ``dataset``."""
    spec = cascade_spec(name, params)
    if spec is None:
        return None
    method = cascade_method(spec, found) if name == spec.name else tuned_cascade_method(spec, found)
    for part in (spec.deblur, spec.interpolate):
        if found.methods[part].trains and part not in params.train.methods:
            raise ParamError(f"evaluate.cascades entry {name}: {part} trains, so it must be listed in train.methods "
                             f"{list(params.train.methods)} (the cascade loads its checkpoints)")
        if not found.methods[part].trains:
            raise ParamError(f"evaluate.cascades entry {name}: {part} does not train; the evaluate_cascade stage "
                             "depends on both components' checkpoints, so compose two methods of train.methods")
    if dataset not in params.train.datasets:
        raise ParamError(f"evaluate {name} on {dataset}: not in train.datasets {list(params.train.datasets)} "
                         "(its components' checkpoints are trained there)")
    return method
