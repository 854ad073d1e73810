"""Profiles: a partial params file (``params.<name>.yaml``) over params.yaml, without touching it.

``python -m alabench.profiles --experiment params.<name>.yaml`` (``make repro PROFILE=<name>``) runs the
profile as the DVC experiment ``<name>`` (docs/reproducing.md); ``python -m alabench.profiles OVERLAY``
rewrites params.yaml merged with the overlay, for scratch copies of the project. Both check the merged
params with the schema first, so a bad profile stops before anything runs. ``--set key=value`` changes
a key of the profile for one run and ``--name`` names that experiment (``make repro PROFILE=cpu-long
PROFILE_ARGS="--name cpu-long-seed0 --set train.seeds=[0]"``: docs/reproducing.md).
"""

from __future__ import annotations

import argparse
import copy
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from alabench.config import parse_params
from alabench.frames import atomic_write_text
from alabench.layout import PARAMS_FILE
from alabench.schema import ParamError, merge, read_yaml


def apply_overlay(overlay_path: Path, params_path: Path = PARAMS_FILE) -> None:
    """Write ``params_path`` merged with ``overlay_path``, after validating the result. It drops the
    file's comments: for scratch copies of the project (tests); `make repro PROFILE=` never calls
    it, it runs the profile as an experiment (:func:`profile_command`)."""
    merged = merge(read_yaml(params_path) or {}, read_yaml(overlay_path) or {})
    parse_params(merged, f"{params_path} + {overlay_path}")
    atomic_write_text(params_path, yaml.safe_dump(merged, sort_keys=False))


PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")  # params.<name>.yaml: <name> names a DVC experiment (a git ref)
PARAM_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")  # section.key[.key...]


def override_value(value: Any) -> str:
    """``value`` in the override syntax of ``dvc exp run -S`` (Hydra's): strings quoted, lists and
    mappings in flow style, so that a path, a list of cascades or ``null`` arrive with their types."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {override_value(v)}" for key, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(override_value, value)) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


def overrides(overlay: dict[str, Any], prefix: str = "") -> list[str]:
    """An overlay as ``dvc exp run -S`` arguments, one ``++key=value`` per leaf (``++`` also adds a
    key params.yaml lacks): the same result as :func:`merge` (mappings merge, the rest replaces)."""
    out: list[str] = []
    for key, value in overlay.items():
        if isinstance(value, dict) and value:
            out += overrides(value, f"{prefix}{key}.")
        elif not isinstance(value, dict):  # an empty mapping merges to no change
            out.append(f"++{prefix}{key}={override_value(value)}")
    return out


def with_sets(overlay: dict[str, Any], sets: Sequence[str], where: str) -> dict[str, Any]:
    """``overlay`` with each ``key.path=value`` of ``sets`` put in (the value read as YAML: ``[0]``, ``true``,
    ``"a b"``), replacing what the profile says there: one profile run with a few keys changed."""
    out = copy.deepcopy(overlay)
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep or not PARAM_KEY.fullmatch(key):
            raise ParamError(f"{where}: --set {item!r}: give it as section.key=value (e.g. train.seeds=[0])")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ParamError(f"{where}: --set {item!r}: the value is not YAML ({err.__class__.__name__})") from None
        *sections, leaf = key.split(".")
        node = out
        for section in sections:
            if not isinstance(node.get(section, {}), dict):
                raise ParamError(f"{where}: --set {item!r}: {section!r} is not a section")
            node = node.setdefault(section, {})
        node[leaf] = value
    return out


def profile_command(overlay_path: Path, params_path: Path = PARAMS_FILE, sets: Sequence[str] = (),
                    name: str | None = None) -> list[str]:
    """`make repro PROFILE=<name>`: ``params.<name>.yaml`` run as the DVC experiment ``<name>`` in a
    temporary copy of the project (``dvc exp run --temp``), its keys given as ``-S`` overrides.
    params.yaml and the workspace's results are never touched; the merged params are checked here
    first, so a bad profile stops before DVC copies anything (docs/reproducing.md). ``sets`` change
    keys of the profile for this run (``train.seeds=[0]``), ``name`` names the experiment instead."""
    if not overlay_path.is_file():
        known = sorted(p.name.removeprefix("params.").removesuffix(".yaml")
                       for p in overlay_path.parent.glob("params.*.yaml"))
        raise ParamError(f"{overlay_path}: no such profile file; PROFILE= takes one of: {', '.join(known) or 'none'}")
    overlay = read_yaml(overlay_path) or {}
    if not isinstance(overlay, dict):
        raise ParamError(f"{overlay_path}: the top level must be a mapping of sections, got {type(overlay).__name__}")
    overlay = with_sets(overlay, sets, str(overlay_path))
    parse_params(merge(read_yaml(params_path) or {}, overlay), f"{params_path} + {overlay_path}"
                 + "".join(f" + {item}" for item in sets))
    name = name or overlay_path.name.removeprefix("params.").removesuffix(".yaml")
    if not PROFILE_NAME.fullmatch(name):
        raise ParamError(f"{overlay_path}: the experiment name {name!r} is not allowed: name the file params.<name>.yaml "
                         "(or give --name) with <name> of lower case letters, digits, _ and - (it names a git ref)")
    sets_args = [arg for override in overrides(overlay) for arg in ("-S", override)]
    return [sys.executable, "-m", "dvc", "exp", "run", "--temp", "-n", name, *sets_args]


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m alabench.profiles", description=__doc__.split("\n\n")[0])
    parser.add_argument("overlay", type=Path, help="params.<name>.yaml")
    parser.add_argument("--experiment", action="store_true", help="run it as the DVC experiment <name> "
                        "(make repro PROFILE=<name>), params.yaml untouched; without it: rewrite params.yaml "
                        "merged with the overlay, comments dropped (scratch copies)")
    parser.add_argument("--name", help="the experiment's name (default: <name> of the file)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="change one key of the profile for this run, e.g. --set 'train.seeds=[0]' (repeatable)")
    args = parser.parse_args(argv)
    if (args.name or args.sets) and not args.experiment:
        parser.error("--name and --set go with --experiment")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(sys.argv[1:] if argv is None else argv)
    try:
        if args.experiment:
            command = profile_command(args.overlay, sets=args.sets, name=args.name)
            print(shlex.join(["python", *command[1:]]), flush=True)
            try:
                return subprocess.run(command).returncode
            except KeyboardInterrupt:  # DVC got the Ctrl-C too and stopped; the workspace was never touched
                return 130
        apply_overlay(args.overlay)
    except ParamError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"params.yaml now includes {args.overlay}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
