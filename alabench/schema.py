"""A YAML mapping -> a frozen dataclass, or a :class:`ParamError` naming the key: the generic half of
the params schema (``alabench.config`` declares the sections; a method declares its own ``Options``).

A field's type is the rule: ``Literal`` choices, ``tuple[...]`` lists, ``dict`` mappings, nested
dataclasses, and ``Annotated`` extras (a :class:`Range` for a number, a name pattern of
``alabench.names`` for a string that becomes a folder or a stage name). An unknown key gets a "did
you mean" answer, a missing one is named; a field with a default may be left out.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml

from alabench.errors import UserError
from alabench.layout import PARAMS_FILE
from alabench.names import check_name

T = TypeVar("T")


class ParamError(UserError, ValueError):
    """A params file that cannot be run: names the key, the value and what is allowed."""


def distinct(key: str, values: typing.Sequence[Any]) -> None:
    """Each value once: a list that makes one stage per value would otherwise make one stage twice."""
    twice = sorted({v for v in values if list(values).count(v) > 1}, key=str)
    if twice:
        raise ParamError(f"{key} = {list(values)} is not allowed: {twice[0]} is listed twice; list each once")


@dataclass(frozen=True)
class Range:
    """Inclusive bounds for a number (``None`` = unbounded)."""

    lo: float | None = None
    hi: float | None = None

    def allows(self, value: float) -> bool:
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)

    def describe(self) -> str:
        parts = [f">= {self.lo}" if self.lo is not None else "", f"<= {self.hi}" if self.hi is not None else ""]
        return " and ".join(p for p in parts if p)


# Ranges used across the params sections and the methods' Options.
PositiveInt = Annotated[int, Range(1)]
Probability = Annotated[float, Range(0.0, 1.0)]
Seed = Annotated[int, Range(0, 2**32 - 1)]


def _fail(key: str, value: Any, allowed: str) -> ParamError:
    return ParamError(f"{key} = {value!r} is not allowed: must be {allowed}")


def _convert(hint: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the type ``hint``; return it in the dataclass's own types."""
    if hint is Any:  # checked in depth by whoever reads it (e.g. a method's own Options)
        return value
    rules: tuple[Any, ...] = ()
    if typing.get_origin(hint) is Annotated:
        hint, *rules = typing.get_args(hint)
    for rule in rules:  # a name: its pattern first (it reaches folders and commands), then its type
        if isinstance(rule, re.Pattern):
            check_name(key, value, rule)
    origin = typing.get_origin(hint)

    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _fail(key, value, f"a mapping with keys {[f.name for f in dataclasses.fields(hint)]}")
        return _build(hint, value, f"{key}." if key else "")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise _fail(key, value, "one of " + ", ".join(map(str, choices)))
        return value
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise _fail(key, value, "a mapping")
        return {_convert(key_hint, k, f"{key} key"): _convert(value_hint, v, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise _fail(key, value, "a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _fail(key, value, f"a list of exactly {len(args)} values")
        return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(key, value, "true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(key, value, "an integer" + "".join(f" {r.describe()}" for r in rules))
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(key, value, "a number" + "".join(f" {r.describe()}" for r in rules))
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise _fail(key, value, "a string")
    else:  # pragma: no cover - a schema bug, not a user error
        raise TypeError(f"unsupported type {hint!r} for {key}")
    for rule in rules:
        if isinstance(rule, Range) and not rule.allows(value):
            raise _fail(key, value, f"{'an integer' if hint is int else 'a number'} {rule.describe()}")
    return value


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1)
            guess = f" (did you mean '{prefix}{near[0]}'?)" if near else ""
            raise ParamError(f"unknown key '{prefix}{key}'{guess}; allowed here: {', '.join(names)}")
    optional = {f.name for f in dataclasses.fields(cls)
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}
    missing = [n for n in names if n not in data and n not in optional]
    if missing:
        raise ParamError(f"missing key '{prefix}{missing[0]}': add it (see the README's params table)")
    return cls(**{k: _convert(hints[k], v, f"{prefix}{k}") for k, v in data.items()})


def parse_section(cls: type[T], data: Any, key: str, source: str = str(PARAMS_FILE)) -> T:
    """Validate one mapping against a frozen dataclass (fields with a default may be left out)."""
    try:
        return _convert(cls, data, key)
    except ParamError as err:
        raise ParamError(f"{source}: {err}") from None


def read_yaml(path: Path) -> Any:
    """A YAML file's content, or a ParamError naming the file (missing, or not YAML)."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamError(f"{path}: file not found; run from the repository root") from None
    except yaml.YAMLError as err:
        raise ParamError(f"{path}: not valid YAML: {err}") from None


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Recursively overlay mappings; lists and scalars in ``overlay`` replace those in ``base``."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out

