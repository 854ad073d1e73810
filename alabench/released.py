"""The authors' released checkpoints, in their own key layout, loaded into this repo's ports.

Each ported method whose authors published weights has a :class:`~alabench.released_layouts.Release`: where the file is,
how it wraps its state dict, the method's options at the published size, and the rules that rename
an authors' key into the port's. What the authors' model holds (every key and its shape) is recorded
in ``alabench/released_manifests/<method>.json``, written by ``python -m bench.authors_models`` from
their own code; a file is checked against it key by key before anything is loaded, so a renamed key,
a missing one or a wrong shape is refused with a one-line message naming it and the file. The
mapping itself was checked end to end by ``bench/authors_equivalence.py`` (the same weights in the
authors' model and the port give the same frames: BIN, DAIN and MEMC-Net, recorded with the digest of
their mapping in ``released_manifests/verified.json``); the ports of CAIN, NAFNet and Super SloMo differ
from their authors' code in a layer or two, so their released weights load but do not yet compute
exactly what their authors' model does.

The entry point is :func:`load_released` (``methods.<m>.weights: PATH``): the model must be built
with :func:`published_options`. ALANet's authors released a checkpoint too, but its attention does
not fit the port (:data:`NOT_LOADABLE` says why), so it is refused.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import warnings
from collections.abc import Mapping
from dataclasses import field
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alabench.errors import UserError, unreadable
from alabench.released_layouts import NOT_LOADABLE, RELEASES, Release, Rename

MANIFEST_DIR = Path(__file__).resolve().parent / "released_manifests"

OPTIONAL = ".num_batches_tracked"  # a key a released file may lack


class ReleasedWeightsError(UserError, ValueError):
    """A released checkpoint that does not fit the port: the message names the file, the key and what to do."""



# ------------------------------------------------------------------------------------------------
# Reading, checking, mapping, loading.


def release(method: str) -> Release:
    if method in NOT_LOADABLE:
        raise ReleasedWeightsError(f"methods.{method}.weights: {NOT_LOADABLE[method]}; train it instead")
    if method not in RELEASES:
        raise ReleasedWeightsError(f"methods.{method}.weights: no released checkpoint is known for {method} "
                                   f"(known: {', '.join(sorted(RELEASES))}); train it instead")
    return RELEASES[method]


def published_options(method: str) -> dict[str, Any]:
    """``methods.<method>`` at the size the authors released: build the model with these."""
    return dict(release(method).options)


@cache
def manifest(method: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """The authors' state dict of ``method``: key -> (shape, dtype), as their code builds it."""
    data = json.loads((MANIFEST_DIR / f"{method}.json").read_text())
    return {key: (tuple(entry["shape"]), getattr(torch, entry["dtype"])) for key, entry in data["keys"].items()}


@cache
def _compiled(method: str) -> list[Rename]:
    return release(method).rules()


def port_key(method: str, key: str) -> str | None:
    """The port's key for the authors' ``key`` of ``method``; '' for a key the port has no use for,
    None for a key no rule knows."""
    for rule in _compiled(method):
        renamed = rule(key)
        if renamed is not None:
            return None if renamed.startswith("unknown.") else renamed
    return None


def mapping_digest(method: str) -> str:
    """sha256 of the whole key mapping of ``method`` (authors' key -> port key, manifest order): what
    ``bench/authors_equivalence.py --record`` stores in ``verified.json`` once the outputs agreed."""
    lines = "".join(f"{key}\t{port_key(method, key)}\n" for key in manifest(method))
    return hashlib.sha256(lines.encode()).hexdigest()


def read_checkpoint(method: str, path: Path | str) -> dict[str, torch.Tensor]:
    """The authors' state dict in ``path`` (its container unwrapped, a DataParallel 'module.' prefix
    removed), read with ``weights_only=True``: a file of anything but tensors is refused unrun."""
    path = Path(path)
    what = release(method)
    if not path.is_file():
        raise ReleasedWeightsError(f"{path}: no such file; download {method}'s released weights from {what.url}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise
    except Exception as err:  # torch raises many types for a broken or foreign file
        todo = f"download {method}'s released weights again from {what.url}"
        raise ReleasedWeightsError(unreadable(path, err, todo)) from None
    state = what.unwrap(obj)
    if not isinstance(state, dict) or not state or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                           for k, v in state.items()):
        found = f"a dict with keys {sorted(map(str, obj))[:5]}" if isinstance(obj, dict) else type(obj).__name__
        raise ReleasedWeightsError(f"{path}: not {method}'s released checkpoint (expected {what.container}; found "
                                   f"{found}); download it from {what.url}")
    if all(k.startswith("module.") for k in state):  # saved from nn.DataParallel, as the authors' loaders accept
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def to_port(method: str, state: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """``state`` in the authors' layout of ``method`` -> the port's state dict. Every key must be in
    the recorded manifest with its shape, and none missing; keys the authors' model holds twice (a
    shared module under two names) must hold the same values."""
    expected = manifest(method)
    todo = f"is it {method}'s released checkpoint ({release(method).url})?"
    out: dict[str, torch.Tensor] = {}
    came_from: dict[str, str] = {}
    # BatchNorm's counter came with torch 0.4.1: older files (MEMC-Net's, torch 0.2) have none, and eval ignores it
    missing = [k for k in expected if k not in state and not k.endswith(OPTIONAL)]
    for key, value in state.items():
        if key not in expected:
            near = difflib.get_close_matches(key, missing, n=1)
            hint = f" (did you mean '{near[0]}', which is missing?)" if near else ""
            raise ReleasedWeightsError(f"{source}: key '{key}' is not in {method}'s released layout{hint}; {todo}")
        shape, _ = expected[key]
        if tuple(value.shape) != shape:
            raise ReleasedWeightsError(f"{source}: key '{key}' has shape {tuple(value.shape)}, {method}'s released "
                                       f"model has {shape}; {todo}")
        target = port_key(method, key)
        if target is None:
            raise ReleasedWeightsError(f"{source}: key '{key}' has no counterpart in the port of {method} "
                                       "(alabench/released.py knows no rule for it)")
        if not target:
            continue
        if target in out and not torch.equal(out[target], value):
            raise ReleasedWeightsError(f"{source}: keys '{came_from[target]}' and '{key}' are one shared weight in "
                                       f"{method}'s model but differ in the file; {todo}")
        out[target], came_from[target] = value, key
    if missing:
        raise ReleasedWeightsError(f"{source}: key '{missing[0]}' is missing ({len(missing)} of {method}'s "
                                   f"{len(expected)} keys missing); {todo}")
    return out


def build_published(method: str, params: Any) -> nn.Module:
    """The port of ``method`` built at its published size: ``params`` (a Params) with
    ``methods.<method>`` overridden by :func:`published_options`."""
    from alabench.methods import build_model, get_method, with_method_options
    return build_model(get_method(method), with_method_options(params, method, **published_options(method)))


def load_released(method: str, model: nn.Module, path: Path | str) -> nn.Module:
    """Load the authors' released checkpoint at ``path`` into ``model`` (the port of ``method`` built
    with :func:`published_options`): every weight is replaced, in eval mode."""
    state = to_port(method, read_checkpoint(method, path), str(path))
    own = model.state_dict()
    state |= {k: v for k, v in own.items() if k.endswith(OPTIONAL) and k not in state}  # the model's own counters
    build = f"build {method} with its published options, methods.{method}: {published_options(method)}"
    for key, value in state.items():
        if key not in own or own[key].shape != value.shape:
            found = "no such key" if key not in own else f"shape {tuple(own[key].shape)}"
            raise ReleasedWeightsError(f"{path}: '{key}' {tuple(value.shape)} does not fit the model ({found}): "
                                       + build)
    unfilled = sorted(set(own) - set(state))
    if unfilled:
        raise ReleasedWeightsError(f"{path}: the model's '{unfilled[0]}' is not in the released weights "
                                   f"({len(unfilled)} keys): {build}")
    model.load_state_dict(state)
    return model.eval()


def manifest_state(method: str, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """A state dict in the authors' layout of ``method``, of random values, generated from the recorded
    manifest (what a released file holds, without the file): keys the authors' model shares hold the
    same tensor; BatchNorm variances are positive and counters integers."""
    values: dict[str, torch.Tensor] = {}
    out: dict[str, torch.Tensor] = {}
    for key, (shape, dtype) in manifest(method).items():
        shared = port_key(method, key) or key
        if shared not in values:
            if not dtype.is_floating_point:
                values[shared] = torch.randint(0, 1000, shape, generator=generator, dtype=dtype)
            elif key.endswith("running_var"):
                values[shared] = torch.rand(shape, generator=generator, dtype=dtype) + 0.5
            else:
                values[shared] = torch.randn(shape, generator=generator, dtype=dtype) * 0.05
        out[key] = values[shared]
    return out


# ------------------------------------------------------------------------------------------------
# methods.<m>.weights: a method evaluated with its authors' released checkpoint, untrained here.

RELEASED_WEIGHTS = "alabench.released.weights"  # the field metadata key that :func:`released_weights` sets


def released_weights() -> Any:
    """Declare the field of a method's ``Options`` that names its authors' released checkpoint
    (``weights: str = released_weights()``): set to a path, the method is built as its options say
    (they must be the published size), loads that file in the authors' key layout, and needs no train
    stage (list it in ``evaluate.methods``). Only a declared field counts, never a name that matches."""
    return field(default="", metadata={RELEASED_WEIGHTS: True})


def weights_of(options: Any) -> str:
    """The released checkpoint ``options`` name ('' where none is set or none is declared)."""
    if options is None:
        return ""
    return next((getattr(options, f.name) for f in dataclasses.fields(options) if f.metadata.get(RELEASED_WEIGHTS)), "")


def as_configured(method: Any, params: Any) -> Any:
    """``method`` as ``params`` set it up: where its options name released weights, a method that does
    not train and whose ``build`` loads them (refused with the reason where they cannot be loaded)."""
    path = weights_of(method.options_from(params))
    if not path:
        return method
    release(method.name)  # a method without a known release is refused before anything is built
    build = method.build

    def build_released(params: Any, options: Any) -> nn.Module:
        return load_released(method.name, build(params, options), path)

    return dataclasses.replace(method, trains=False, build=build_released,
                               description=f"{method.description} (the authors' released weights, {path})")


def file_sha256(path: Path | str) -> str:
    """sha256 of the weights file, recorded beside the scores it made (DVC tracks the path, not the file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
