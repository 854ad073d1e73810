"""`python -m stages.methods new NAME`: a working method package from a template.

Three templates in ``alabench/method_templates/``: per-frame numpy functions, per-frame torch
functions (both through ``alabench.methods.frame_method``, not trained), and a small trainable
torch network. Each passes the contract tests as written (``tests/test_method_packages.py``), so a user
starts from something that runs and replaces its body. Also says what to add to params.yaml and
the one ``dvc repro`` command that evaluates the new method alone.
"""

from __future__ import annotations

import string
from pathlib import Path

from alabench.config import METHOD_NAME, Params
from alabench.errors import UserError
from alabench.frames import atomic_write_text
from alabench.methods import BASELINES_DIR

TEMPLATES = Path(__file__).resolve().parent / "method_templates"
KINDS = ("numpy", "torch", "trains")


class ScaffoldError(UserError, ValueError):
    """A name or a combination of flags the scaffold cannot write."""


def template_kind(arrays: str, trains: bool) -> str:
    """Which template: ``trains`` needs torch (gradients), per-frame functions otherwise."""
    if trains and arrays == "numpy":
        raise ScaffoldError("--numpy --trains: a numpy method cannot be trained (no gradients); "
                            "use --torch --trains (or drop --trains)")
    return "trains" if trains else arrays


def write_method_package(name: str, kind: str, folder: Path = BASELINES_DIR) -> Path:
    """``folder/<name>/__init__.py`` from the ``kind`` template; refuses a bad or taken name."""
    if not METHOD_NAME.fullmatch(name):
        raise ScaffoldError(f"method name {name!r}: use lower case letters, digits and _, starting with a letter "
                            "(it names a folder, a results folder and params keys)")
    target = Path(folder) / name
    if target.exists() or (Path(folder) / f"{name}.py").exists():
        shown = target.relative_to(BASELINES_DIR.parent) if target.is_relative_to(BASELINES_DIR.parent) else target
        raise ScaffoldError(f"{shown}/: already exists; choose another name (or delete that method first)")
    text = string.Template((TEMPLATES / f"{kind}.py.tmpl").read_text()).substitute(name=name)
    path = target / "__init__.py"
    atomic_write_text(path, text)
    return path


def next_steps(name: str, trains: bool, params: Params | None) -> str:
    """The params.yaml lines to add and the command that evaluates the new method alone."""
    key = "train" if trains else "evaluate"
    listed = list(params.train.methods if trains else params.evaluate.methods) if params is not None else ["..."]
    stage = "evaluate_trained" if trains else "evaluate"
    return "\n".join([
        "add to params.yaml:",
        f"  {key}:",
        f"    methods: [{', '.join([*listed, name])}]",
        "  methods:",
        f"    {name}: {{}}          # its options; defaults in baselines/{name}/__init__.py, Options",
        "check it, then evaluate it alone" + (" (trains it first)" if trains else "") + ":",
        "  python -m stages.methods",
        f"  python -m dvc repro --glob '{stage}@{name}-*'",
    ])
