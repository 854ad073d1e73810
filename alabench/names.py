"""Names in params.yaml are identifiers; paths are data.

A method, data set, protocol or cascade name becomes a DVC stage name, a folder (``baselines/``,
``results/``, ``checkpoints/``) and a word of a stage's ``cmd``, which DVC hands to a shell. So
every such name must match one pattern, :data:`NAME`, checked by the params schema
(``alabench.config``) in the `check_params` stage, which every other stage depends on: a name that
could run something stops `dvc repro` before any command line is built from it. Paths never reach a
command line: a stage reads them from params.yaml by a checked key (``stages.score --entry``).

Torch-free, so that the check stage stays fast: :func:`method_packages` lists the method packages
of ``baselines/`` without importing them (``alabench.methods.discover`` imports the ones listed).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alabench.config import Params

NAME = re.compile(r"[a-z][a-z0-9_]*")  # a method, data set, protocol or method package name
KEY = re.compile(r"[a-z0-9][a-z0-9_-]*")  # an evaluate.folders key: names the stage evaluate_folder@<key>
BASELINES_DIR = Path(__file__).resolve().parent.parent / "baselines"


def _refuse(message: str) -> Exception:
    """The params schema's error (``alabench.schema`` imports this module, so it is imported late)."""
    from alabench.schema import ParamError

    return ParamError(message)


def check_name(key: str, value: Any, pattern: re.Pattern[str] = NAME) -> str:
    """``value`` if it is a string matching ``pattern`` in full, else the params error naming ``key``."""
    if isinstance(value, str) and pattern.fullmatch(value):
        return value
    raise _refuse(f"{key} = {value!r} is not allowed: must match {pattern.pattern} (it becomes part of a "
                  "folder, a DVC stage name and a stage's command)")


def check_path(key: str, value: str, inside_repo: bool) -> str:
    """``value``, a path given in params.yaml, if a stage can take it as data: not empty, no control
    characters (a newline would split a dvc.yaml entry), and with ``inside_repo`` a relative path
    that stays inside the repository (an absolute path says plainly that it leaves it)."""
    if not value.strip():
        raise _refuse(f"{key} = {value!r} is not allowed: must be a path")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise _refuse(f"{key} = {value!r} is not allowed: a path without control characters (newline, tab)")
    if inside_repo and not os.path.isabs(value) and os.path.normpath(value).split(os.sep)[0] == "..":
        raise _refuse(f"{key} = {value!r} is not allowed: it leaves the repository; keep the folder inside it "
                      "(relative to the repository root), or give its absolute path")
    return value


@dataclass(frozen=True)
class Packages:
    found: dict[str, Path]  # method name -> its package folder baselines/<name>/
    rejected: dict[str, str]  # entry of the folder ("<name>/" or a loose "<name>.py") -> why it cannot be used


def method_packages(folder: Path = BASELINES_DIR) -> Packages:
    """The method packages of ``folder`` by name, without importing them: every ``<name>/__init__.py``
    whose name matches :data:`NAME`; a loose ``<name>.py`` or a folder named otherwise is rejected
    with why (and never imported). Entries starting with ``_`` or ``.`` are not methods."""
    folder = Path(folder)
    found: dict[str, Path] = {}
    rejected: dict[str, str] = {}
    if not folder.is_dir():
        return Packages(found, rejected)
    for path in sorted(folder.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if path.is_file() and path.suffix == ".py":
            rejected[path.name] = (f"a method is a folder: move it to {path.stem}/__init__.py (the pipeline's "
                                   f"stages depend on the folder baselines/{path.stem}/); `python -m stages.methods "
                                   f"new NAME` writes one")
        elif path.is_dir() and (path / "__init__.py").is_file():
            if NAME.fullmatch(path.name):
                found[path.name] = path
            else:
                rejected[f"{path.name}/"] = (f"not imported: a method's name must match {NAME.pattern} (it names "
                                             "its stages and results folder); rename the folder")
    return Packages(found, rejected)


def check_method_packages(params: Params, source: str, folder: Path = BASELINES_DIR) -> None:
    """Every method that params.yaml runs or configures has its package ``baselines/<name>/`` (the
    folder its stages depend on): refused here, naming the key and the methods there are, rather than
    by DVC's missing-dependency error once the stages run."""
    known = list(method_packages(folder).found)
    named = [(f"train.methods[{i}]", n) for i, n in enumerate(params.train.methods)]
    named += [(f"evaluate.methods[{i}]", n) for i, n in enumerate(params.evaluate.methods)]
    named += [(f"evaluate.cascades[{i}].{part}", getattr(c, part)) for i, c in enumerate(params.evaluate.cascades)
              for part in ("deblur", "interpolate")]
    named += [(f"methods.{n}", n) for n in params.methods]
    for key, name in named:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            raise _refuse(f"{source}: {key} names {name!r}, but there is no method package {folder.name}/{name}/; "
                          f"{hint}known methods: {', '.join(known)} (`python -m stages.methods new {name}` writes "
                          "a package)")
