"""The method interface: ALANet, its ablations and every baseline pass through this one door.

A method is registered by a file in ``baselines/`` (no central list): it declares its name, the
tasks it addresses, whether it trains, and ``build(params) -> nn.Module``. The module has a
``window`` attribute (frames per window) and maps (B, W, 3, H, W) frames in [0, 1] to
``(deblur (B, W, 3, H, W), interp (B, W-1, 3, H, W))``. A method that only interpolates returns
its inputs as deblurred frames, so every method fills the joint table.
"""

from __future__ import annotations

import difflib
import importlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from alabench.config import Params
from alabench.errors import UserError

TASKS = frozenset({"deblur", "interpolate"})
BASELINES_DIR = Path(__file__).resolve().parent.parent / "baselines"


class MethodError(UserError, LookupError):
    """An unknown or broken method; the message names it and what was found instead."""


@dataclass(frozen=True)
class Method:
    name: str
    tasks: frozenset[str]  # what it really addresses, a subset of TASKS
    trains: bool
    build: Callable[[Params], nn.Module]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.tasks or not self.tasks <= TASKS:
            raise ValueError(f"method {self.name}: tasks must be a non-empty subset of {sorted(TASKS)}")


_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in _REGISTRY and _REGISTRY[method.name] is not method:
        raise MethodError(f"two methods are named '{method.name}'; rename one")
    _REGISTRY[method.name] = method
    return method


@dataclass(frozen=True)
class Discovery:
    methods: dict[str, Method]
    rejected: dict[str, str]  # file -> why it could not be loaded


def discover(folder: Path = BASELINES_DIR) -> Discovery:
    """Import every ``*.py`` in ``baselines/``; a broken file is reported, the others still load."""
    rejected: dict[str, str] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{folder.name}.{path.stem}")
        except Exception as err:  # report any failure of a user's file, with where it happened
            where = traceback.extract_tb(err.__traceback__)[-1]
            rejected[path.name] = f"{type(err).__name__}: {err} ({Path(where.filename).name}:{where.lineno})"
    return Discovery(dict(sorted(_REGISTRY.items())), rejected)


def get_method(name: str, found: Discovery | None = None) -> Method:
    found = found or discover()
    if name in found.methods:
        return found.methods[name]
    near = difflib.get_close_matches(name, list(found.methods), n=1)
    hint = f" Did you mean '{near[0]}'?" if near else ""
    broken = "".join(f"\n  {f}: {why}" for f, why in found.rejected.items())
    raise MethodError(f"unknown method '{name}'.{hint} Known: {', '.join(found.methods)}."
                      + (f" Files in baselines/ that failed to load:{broken}" if broken else ""))
