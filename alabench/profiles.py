"""Profiles: a partial params file (``params.<name>.yaml``) over params.yaml, without touching it.

``python -m alabench.profiles --experiment params.<name>.yaml`` (``make repro PROFILE=<name>``) runs the
profile as the DVC experiment ``<name>`` (docs/reproducing.md); ``python -m alabench.profiles OVERLAY``
rewrites params.yaml merged with the overlay, for scratch copies of the project. Both check the merged
params with the schema first, so a bad profile stops before anything runs.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def profile_command(overlay_path: Path, params_path: Path = PARAMS_FILE) -> list[str]:
    """`make repro PROFILE=<name>`: ``params.<name>.yaml`` run as the DVC experiment ``<name>`` in a
    temporary copy of the project (``dvc exp run --temp``), its keys given as ``-S`` overrides.
    params.yaml and the workspace's results are never touched; the merged params are checked here
    first, so a bad profile stops before DVC copies anything (docs/reproducing.md)."""
    if not overlay_path.is_file():
        known = sorted(p.name.removeprefix("params.").removesuffix(".yaml")
                       for p in overlay_path.parent.glob("params.*.yaml"))
        raise ParamError(f"{overlay_path}: no such profile file; PROFILE= takes one of: {', '.join(known) or 'none'}")
    overlay = read_yaml(overlay_path) or {}
    if not isinstance(overlay, dict):
        raise ParamError(f"{overlay_path}: the top level must be a mapping of sections, got {type(overlay).__name__}")
    parse_params(merge(read_yaml(params_path) or {}, overlay), f"{params_path} + {overlay_path}")
    name = overlay_path.name.removeprefix("params.").removesuffix(".yaml")
    if not PROFILE_NAME.fullmatch(name):
        raise ParamError(f"{overlay_path}: the profile name {name!r} is not allowed: name the file params.<name>.yaml "
                         "with <name> of lower case letters, digits, _ and - (it names the experiment)")
    sets = [arg for override in overrides(overlay) for arg in ("-S", override)]
    return [sys.executable, "-m", "dvc", "exp", "run", "--temp", "-n", name, *sets]


USAGE = """usage: python -m alabench.profiles --experiment params.<name>.yaml   (make repro PROFILE=<name>: runs the
       profile as the DVC experiment <name>, params.yaml untouched)
   or: python -m alabench.profiles OVERLAY.yaml   (rewrites params.yaml merged with it, comments dropped)"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2) or (len(argv) == 2 and argv[0] != "--experiment"):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        if len(argv) == 2:
            command = profile_command(Path(argv[1]))
            print(shlex.join(["python", *command[1:]]), flush=True)
            try:
                return subprocess.run(command).returncode
            except KeyboardInterrupt:  # DVC got the Ctrl-C too and stopped; the workspace was never touched
                return 130
        apply_overlay(Path(argv[0]))
    except ParamError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"params.yaml now includes {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
