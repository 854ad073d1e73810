"""The method interface: ALANet, its ablations and every baseline pass through this one door.

A method is one folder ``baselines/<name>/`` (no central list) whose ``__init__.py`` calls
:func:`register` with a :class:`Method`: its name (the folder's name: the pipeline's stages depend
on that whole folder, so helper modules and small assets beside ``__init__.py`` count), the tasks it
addresses, whether it trains, optionally an ``Options`` dataclass of its own knobs (defaults beside
the method, overridden by ``params.yaml: methods.<name>``), and ``build(params, options) -> nn.Module``.
The registry parses the options (:meth:`Method.options_from`: it knows the method's name) and hands
them to ``build`` and ``loss``, so a package never names itself to find its own knobs: a copied
package cannot read another method's by mistake.

The module has a ``window`` attribute (frames per window) and maps (B, W, 3, H, W) frames in
[0, 1] to ``(deblur (B, W, 3, H, W), interp (B, W-1, 3, H, W))``, interp k lying midway between
inputs k and k+1, for any frame size. A method that only interpolates returns its inputs as
deblurred frames, and one that only deblurs returns the mean of each pair of inputs as interpolated
frames, so every method fills the joint table; ``tasks`` says what it really addresses.
Trainable methods are trained by the shared `train` stage and evaluated from their checkpoint.

Optionally the module also implements :class:`Incremental`; clip inference then encodes each
input once and decodes only the outputs it keeps (``alabench.inference``); or :class:`Chained`,
two modules that clip inference runs over the clip one after the other; or :class:`Recurrent`, a
state handed from each window to the next. A module that implements :class:`Knockouts` names parts
of itself that can be switched off; evaluation then scores each knock-out of a trained method like a
method of its own (``alabench.probes``): does the part matter?

A method made of plain per-frame functions, numpy or torch (``deblur(frame)``,
``interpolate(a, b)``), needs no module of its own: :func:`frame_method` wraps them in one that
deblurs each input once and interpolates each pair once.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from alabench.config import ParamError, Params, parse_section
from alabench.errors import UserError, unreadable
from alabench import vocabulary
from alabench.names import BASELINES_DIR, NAME, method_packages
from alabench.capabilities import Chained, Features, Incremental, Knockouts, Recurrent  # re-exported

TASKS = frozenset(vocabulary.TASKS)
# Outputs may overshoot [0, 1] a little (residual networks); they are clipped when scored. Values
# beyond these bounds mean another convention (0-255, or -1-1) and fail the method.
OUTPUT_RANGE = (-0.5, 1.5)


class MethodError(UserError, LookupError):
    """An unknown or broken method; the message names it and what was found instead."""


class MethodFailed(RuntimeError):
    """The method itself failed: it raised, or broke the output contract (shape, dtype, NaN, range).

    Not a UserError: `evaluate` contains it in the method's own summary (``status: failed``)."""


@dataclass(frozen=True)
class Method:
    name: str  # = the folder's name: baselines/<name>/
    tasks: frozenset[str]  # what it really addresses, a non-empty subset of TASKS
    trains: bool  # trained by the `train` stage (then listed in train.methods)
    # (params, its parsed options: an instance of ``options``, or None without) -> the module
    build: Callable[[Params, Any], nn.Module]
    description: str = ""
    options: type | None = None  # frozen dataclass of its knobs, every field with a default
    # its training loss as published, (params, options) -> nn.Module; None: the shared eq. 8 loss
    loss: Callable[[Params, Any], nn.Module] | None = None
    source: str = field(default="", compare=False)  # its folder, baselines/<name> (set by register)
    # trained methods whose checkpoints it loads into ``model.parts[<name>]``, one per seed (a
    # cascade's components, alabench.cascade); it trains nothing itself
    uses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise ValueError(f"method name {self.name!r}: must match {NAME.pattern} (it names a folder)")
        if not self.tasks or not self.tasks <= TASKS:
            raise ValueError(f"method {self.name}: tasks must be a non-empty subset of {sorted(TASKS)}")
        for role, fn in (("build", self.build), ("loss", self.loss)):
            if fn is not None and not _takes_two(fn):
                raise TypeError(f"method {self.name}: {role} must be a function (params, options) -> nn.Module "
                                "(options: the method's parsed Options, or None when it has none)")
        if self.options is not None:
            if not dataclasses.is_dataclass(self.options):
                raise TypeError(f"method {self.name}: options must be a dataclass")
            no_default = [f.name for f in dataclasses.fields(self.options)
                          if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
            if no_default:
                raise TypeError(f"method {self.name}: option '{no_default[0]}' needs a default")

    def options_from(self, params: Params) -> Any:
        """Its ``options`` (defaults) overridden by ``params.yaml: methods.<name>``, parsed and typed (a
        ParamError names ``methods.<name>.<key>``); None for a method without options, whose entry
        must then be empty."""
        given = params.methods.get(self.name) or {}
        if self.options is None:
            if given:
                raise ParamError(f"methods.{self.name} sets {given}, but {self.name} has no options; "
                                 "remove the entry")
            return None
        return parse_section(self.options, given, f"methods.{self.name}")


def _takes_two(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` can be called with two positional arguments (a builtin that hides its signature passes)."""
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        return False
    except ValueError:
        return callable(fn)
    return True


def knockouts_of(model: nn.Module) -> dict[str, str]:
    """The knock-outs ``model`` declares ({} for a module that is not :class:`Knockouts`); a name that
    cannot name a file (probes/<name>.csv) or a description that is not one line is a MethodError."""
    if not isinstance(model, Knockouts):
        return {}
    declared = dict(model.knockouts())
    for name, description in declared.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise MethodError(f"{type(model).__name__}.knockouts(): {name!r} must match {NAME.pattern} "
                              "(it names the file probes/<name>.csv); rename it")
        if not isinstance(description, str) or not description.strip() or "\n" in description:
            raise MethodError(f"{type(model).__name__}.knockouts(): the description of {name!r} must be one "
                              f"line of text, got {description!r}")
    return declared


_REGISTRY: dict[str, Method] = {}  # its folder -> the method


def register(method: Method) -> Method:
    """Make ``method`` known; called once in its ``baselines/<name>/__init__.py`` (or a module of that package)."""
    caller = inspect.currentframe().f_back  # type: ignore[union-attr]
    folder = Path(caller.f_code.co_filename).resolve().parent  # type: ignore[union-attr]
    if folder.name != method.name:
        raise MethodError(f"{folder.name}/ registers '{method.name}': a method lives in the folder named after it "
                          f"(baselines/{method.name}/; the pipeline's stages depend on that folder); rename one")
    method = dataclasses.replace(method, source=str(folder))
    _REGISTRY[method.source] = method  # by folder: in one baselines/ folder names cannot clash
    return method


@dataclass(frozen=True)
class Discovery:
    methods: dict[str, Method]
    rejected: dict[str, str]  # entry of the folder ("<name>/" or a stray "<name>.py") -> why it could not be used


def _import(package: Path) -> None:
    """Import a method package: the repo's own as ``baselines.<name>``, any other folder's by path
    (as a package, so that its relative imports of helper modules work)."""
    if package.parent == BASELINES_DIR:
        importlib.import_module(f"baselines.{package.name}")
        return
    parent = f"_alabench_methods_{hashlib.sha1(str(package.parent).encode()).hexdigest()[:10]}"
    name = f"{parent}.{package.name}"
    if name in sys.modules:
        return
    if parent not in sys.modules:  # an empty namespace parent, so that `from . import helper` resolves
        sys.modules[parent] = importlib.util.module_from_spec(importlib.machinery.ModuleSpec(parent, None,
                                                                                             is_package=True))
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]  # a fixed package is imported afresh next time
        raise


def discover(folder: Path = BASELINES_DIR) -> Discovery:
    """Import every method package ``folder/<name>/`` (``alabench.names.method_packages``); a broken
    one is reported with why, the others still load. A loose ``<name>.py`` or a folder whose name is
    not a method name is reported too, and never imported."""
    folder = Path(folder).resolve()
    packages = method_packages(folder)
    rejected = dict(packages.rejected)
    for package in packages.found.values():
        entry = f"{package.name}/"
        try:
            _import(package)
        except Exception as err:  # report any failure of a user's package, with where it happened
            frames = [f for f in traceback.extract_tb(err.__traceback__) if package in Path(f.filename).parents]
            where = (f" ({Path(frames[-1].filename).relative_to(folder)}:{frames[-1].lineno})" if frames else "")
            rejected[entry] = f"{type(err).__name__}: {err}{where}"
            continue
        if str(package) not in _REGISTRY:
            rejected[entry] = (f"defines no method: call alabench.methods.register(Method(name='{package.name}', "
                               "tasks=..., trains=..., build=...)) in its __init__.py")
    found = {m.name: m for m in sorted(_REGISTRY.values(), key=lambda m: m.name)
             if Path(m.source).parent == folder and f"{m.name}/" not in rejected}
    return Discovery(found, rejected)


def get_method(name: str, found: Discovery | None = None) -> Method:
    found = found or discover()
    if name in found.methods:
        return found.methods[name]
    near = difflib.get_close_matches(name, list(found.methods), n=1)
    hint = f" Did you mean '{near[0]}'?" if near else ""
    broken = "".join(f"\n  {f}: {why}" for f, why in found.rejected.items())
    raise MethodError(f"unknown method '{name}'.{hint} Known: {', '.join(found.methods)}."
                      + (f" Entries of baselines/ that failed to load:{broken}" if broken else ""))


# --------------------------------------------------------------------------------------------
# What the stages (and the methods' build functions) call.


def with_method_options(params: Params, name: str, **changes: Any) -> Params:
    """``params`` with ``methods.<name>`` updated: benches and tests build a method at other sizes."""
    methods = {**params.methods, name: {**params.methods.get(name, {}), **changes}}
    return dataclasses.replace(params, methods=methods)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_model(method: Method, params: Params) -> nn.Module:
    """``method.build(params, its options)``, checked; what the method's own code raises comes out as
    MethodFailed (a bad param or another user error stays what it is)."""
    options = method.options_from(params)
    try:
        model = method.build(params, options)
    except UserError:
        raise
    except Exception as err:  # the method's own failure, whatever it is
        raise MethodFailed(f"build raised {type(err).__name__}: {err}") from err
    window = getattr(model, "window", None)
    if not isinstance(model, nn.Module) or not isinstance(window, int) or window < 2:
        raise MethodFailed(f"build must return an nn.Module whose `window` is an int >= 2, got "
                           f"{type(model).__name__} with window {window!r}")
    return model


def load_weights(model: nn.Module, name: str, checkpoint: Path) -> nn.Module:
    """Load the weights the `train` stage saved for method ``name`` into ``model`` (eval mode). A file
    torch cannot read (truncated, damaged, foreign) fails the method (MethodFailed, naming the file),
    not the whole stage; a missing checkpoint or another method's is a MethodError."""
    if not Path(checkpoint).is_file():
        raise MethodError(f"{checkpoint}: no checkpoint for {name}; run `dvc repro` (it trains first)")
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol warns before it is refused
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except PermissionError:
        raise
    except Exception as err:  # torch raises many types for a broken file; its text advises weights_only=False
        raise MethodFailed(unreadable(checkpoint, err, "delete it and run `dvc repro` to train it again")) from None
    if not isinstance(state, dict) or state.get("method") != name or "model" not in state:
        raise MethodError(f"{checkpoint}: not a checkpoint of {name} (expected the dict the train stage "
                          "writes); delete it and run `dvc repro`")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise MethodError(f"{checkpoint}: its weights do not fit {name} as params.yaml builds it now "
                          f"(trained with other params?); run `dvc repro` to retrain. {str(err).splitlines()[0]}") from None
    return model.eval()


def load_trained(method: Method, params: Params, checkpoint: Path) -> nn.Module:
    """A trained method ready to run: built from ``params``, weights from ``checkpoint``."""
    return load_weights(build_model(method, params), method.name, checkpoint)


def check_frames(kind: str, out: Any, shape: tuple[int, ...], inputs: tuple[int, ...]) -> torch.Tensor:
    """One output of the method: a float tensor of ``shape``, finite, in OUTPUT_RANGE; raises
    MethodFailed saying what broke (``inputs``, the shape it was made from, for the message)."""
    if not isinstance(out, torch.Tensor):
        raise MethodFailed(f"{kind} must be a tensor, got {type(out).__name__}")
    if tuple(out.shape) != shape:
        raise MethodFailed(f"{kind} has shape {tuple(out.shape)}, expected {shape} for inputs {inputs}")
    if not out.is_floating_point():
        raise MethodFailed(f"{kind} has dtype {out.dtype}, expected floating point in [0, 1]")
    if not torch.isfinite(out).all():
        raise MethodFailed(f"{kind} holds NaN or infinite values")
    lo, hi = out.min().item(), out.max().item()
    if lo < OUTPUT_RANGE[0] or hi > OUTPUT_RANGE[1]:
        raise MethodFailed(f"{kind} spans [{lo:.3g}, {hi:.3g}]: frames must be in [0, 1] "
                           f"(values beyond {list(OUTPUT_RANGE)} mean another range convention)")
    return out


def check_outputs(frames: torch.Tensor, outputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The contract of a forward pass on ``frames`` (B, W, 3, H, W); raises MethodFailed saying what broke."""
    if not (isinstance(outputs, (tuple, list)) and len(outputs) == 2
            and all(isinstance(t, torch.Tensor) for t in outputs)):
        raise MethodFailed(f"must return a pair of tensors (deblur, interp), got {type(outputs).__name__}")
    b, w, c, h, wd = shape = tuple(frames.shape)
    return (check_frames("deblur", outputs[0], (b, w, c, h, wd), shape),
            check_frames("interp", outputs[1], (b, w - 1, c, h, wd), shape))


# --------------------------------------------------------------------------------------------
# Methods made of plain functions.

# The rounding every output gets before it is scored (alabench.metrics.to_uint8), for code that
# writes its own PNGs to match: np.round rounds half to even, as torch.round does.
ROUNDING = "np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)"
ARRAYS = ("numpy", "torch")


class FrameFunctions(nn.Module):
    """A method of per-frame functions as a module: ``deblur(frame)`` on each input once,
    ``interpolate(a, b)`` on each pair of consecutive inputs once.

    ``arrays`` = "numpy": frames are (H, W, 3) float32 arrays in [0, 1]; "torch": (3, H, W) float32
    tensors in [0, 1], on the evaluation's device. With ``options`` (the method's Options, read from
    params.yaml) each function gets it as a second / third argument. A missing ``deblur`` keeps the
    input; a missing ``interpolate`` takes the mean of the two neighbours. Windows of 2 frames and
    the :class:`Incremental` split (each frame is its own "features") make clip inference call each
    function exactly once per output it keeps.
    """

    window = 2

    def __init__(self, deblur: Callable[..., Any] | None, interpolate: Callable[..., Any] | None,
                 arrays: str, options: Any = None) -> None:
        super().__init__()
        self.deblur_fn, self.interpolate_fn, self.arrays, self.config = deblur, interpolate, arrays, options

    def _call(self, fn: Callable[..., Any], *frames: torch.Tensor) -> torch.Tensor:
        """``fn`` on frames (3, H, W), converted to and from its arrays; checks what it returns."""
        args: list[Any] = [f.float() for f in frames]
        if self.arrays == "numpy":
            args = [f.movedim(0, -1).cpu().numpy() for f in args]
        out = fn(*args, self.config) if self.config is not None else fn(*args)
        shape = tuple(args[0].shape)
        if tuple(getattr(out, "shape", ())) != shape:
            raise ValueError(f"{getattr(fn, '__name__', 'the function')} returned "
                             f"{type(out).__name__} of shape {tuple(getattr(out, 'shape', ()))}, expected {shape} "
                             f"({'an (H, W, 3) float array' if self.arrays == 'numpy' else 'a (3, H, W) float tensor'})")
        if self.arrays == "numpy":
            out = torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).movedim(-1, 0)
        return out.to(frames[0].device, torch.float32)

    def _deblur(self, frame: torch.Tensor) -> torch.Tensor:
        return self._call(self.deblur_fn, frame) if self.deblur_fn is not None else frame.float()

    def _interp(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._call(self.interpolate_fn, a, b) if self.interpolate_fn is not None else (a.float() + b.float()) / 2

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        deblur = torch.stack([torch.stack([self._deblur(f) for f in window]) for window in frames])
        interp = torch.stack([torch.stack([self._interp(window[t], window[t + 1]) for t in range(len(window) - 1)])
                              for window in frames])
        return deblur, interp

    def encode_frames(self, frames: torch.Tensor) -> Features:
        return [frames]

    def deblur_at(self, window: list[Features], i: int) -> torch.Tensor:
        return torch.stack([self._deblur(f) for f in window[i][0]])

    def interp_at(self, window: list[Features], i: int) -> torch.Tensor:
        return torch.stack([self._interp(a, b) for a, b in zip(window[i][0], window[i + 1][0])])


def frame_method(name: str, deblur: Callable[..., Any] | None = None,
                 interpolate: Callable[..., Any] | None = None, arrays: str = "numpy",
                 options: type | None = None, description: str = "") -> Method:
    """A :class:`Method` (not trained) from per-frame functions; see :class:`FrameFunctions` for
    what they receive and return. Its tasks are the functions given; ``options`` is typed and read
    from ``params.yaml: methods.<name>`` like any method's."""
    if arrays not in ARRAYS:
        raise ValueError(f"method {name}: arrays must be one of {ARRAYS}, got {arrays!r}")
    if deblur is None and interpolate is None:
        raise ValueError(f"method {name}: give deblur, interpolate or both")
    for fn in (deblur, interpolate):
        if fn is not None and not callable(fn):
            raise TypeError(f"method {name}: deblur and interpolate must be functions, got {type(fn).__name__}")
    tasks = frozenset(task for task, fn in (("deblur", deblur), ("interpolate", interpolate)) if fn is not None)

    def build(params: Params, config: Any) -> FrameFunctions:
        return FrameFunctions(deblur, interpolate, arrays, config)

    return Method(name=name, tasks=tasks, trains=False, build=build, options=options, description=description)
