"""Dependencies by construction: every stage's `deps` cover the code that can change its outputs.

For each stage of dvc.yaml, resolved by DVC itself (foreach / matrix included) for the default
params and for a params file that adds a fetch, a transfer, a cascade and a folder entry, the test
follows the imports (``import`` and ``from ... import``, at any depth of a function, but not under
``if TYPE_CHECKING:``, which never runs, nor under ``if __name__ == "__main__":`` of a module the
stage imports, which runs only when that module is the command, e.g. ``python -m alabench.profiles``'s
profile CLI) of this repo's code (alabench/, models/, baselines/, stages/) statically, starting from

- the stage's module (``python -m stages.<name>``), and
- every code file its deps list (a folder: the files under it). A listed file's own imports must be
  listed too, and that is how dynamic imports count: the `baselines/${item.method}` dep of an
  evaluate stage (a cascade: both parts) or `alabench/sources/${key}.py` of a fetch stage makes the
  package it loads a root, so the models it imports must be listed as well. A stage whose code loads
  a package dynamically (DYNAMIC) must list the folder it loads from.

Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` too: they count. Every module
reached must be a dep (a folder dep covers the files under it), be empty (a docstring and
``from __future__`` only), or be on HARMLESS.

HARMLESS is the explicit allow-list of modules that cannot change a stage's outputs, each with the
only names that are harmless to import from it. "Starts to matter" is made checkable by two rules:
1. a harmless module imports no code of this repo but other harmless (or empty) modules; stdlib and
   third-party packages are fine: what it runs is its own code, so no dep of its own is missing
   (test_harmless_modules_import_nothing_that_matters);
2. a stage may leave it out of its deps only while every import of it in the stage's closure is
   ``from <module> import <names>`` with each name among those listed for it. ``import x`` whole
   or any other name makes it a module that matters there, so it must be a dep (the report uses
   ``alabench.tracking``'s provenance on its page, so it lists the module; the evaluate stages only
   log to MLflow with it, so they need not). A function added to a harmless module for real work
   is therefore caught as soon as a stage imports it: the fix is a dep, not a longer allow-list.
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml

from alabench.schema import merge

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("alabench", "models", "baselines", "stages")  # this repo's code

# Modules that cannot change any stage's outputs, with the only names a stage may import from them.
HARMLESS: dict[str, frozenset[str]] = {
    # error types, the "disk full" errnos, a full disk renamed and a message text: they decide the
    # exit code and the one-line message, never a byte of an output (a failure writes nothing:
    # alabench.frames.atomic_path)
    "alabench/errors.py": frozenset({"UserError", "DiskFull", "DISK_FULL", "disk_full_names", "unreadable"}),
    # the CLI wrapper: logging setup, timing, error -> exit code around a stage's main(), and the exit
    # without the interpreter's teardown once the outputs are written (stage_main)
    "alabench/cli.py": frozenset({"run_stage", "stage_main"}),
    # progress bars on stderr
    "alabench/progress.py": frozenset({"progress"}),
    # MLflow logging: writes to the MLflow store, never to a DVC output (its provenance helpers,
    # dvc_experiment / git_commit, are not listed: the report prints them, so it lists the module)
    "alabench/tracking.py": frozenset({"mlflow_run"}),
}

# Modules that import packages by a name known only at run time, with the names that do it (None:
# the module's own code does, so reaching it is enough): a stage that imports one of those must list
# the folder they load from (its files then become roots, see the docstring).
DYNAMIC: dict[str, tuple[str, frozenset[str] | None]] = {
    "alabench/methods.py": ("baselines", frozenset({"discover", "get_method"})),  # baselines/<name>/
    "stages/fetch.py": ("alabench/sources", None),  # importlib.import_module(f"alabench.sources.{dataset}")
}


@dataclass(frozen=True)
class Import:
    """``module`` (a repo path) imported by ``source``; ``names`` for ``from module import a, b``."""

    source: str
    module: str
    names: frozenset[str] | None  # None: the module itself (``import x``, ``from pkg import module``)


def module_file(dotted: str) -> str | None:
    """The repo file of a dotted module name, or None for stdlib / third-party modules."""
    if dotted.split(".")[0] not in PACKAGES:
        return None
    base = REPO.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(REPO).as_posix()
    return None


def parents(dotted: str) -> list[str]:
    """The packages whose __init__ an import of ``dotted`` runs first."""
    parts = dotted.split(".")
    return [f for f in (module_file(".".join(parts[:i])) for i in range(1, len(parts))) if f]


def never_run(node: ast.AST, main: bool) -> bool:
    """``if TYPE_CHECKING:`` (for annotations only), or, in a module that is not the command,
    ``if __name__ == "__main__":``."""
    if not isinstance(node, ast.If):
        return False
    test = ast.unparse(node.test)
    return "TYPE_CHECKING" in test or (not main and test in ("__name__ == '__main__'", "'__main__' == __name__"))


def runtime_nodes(tree: ast.AST, main: bool = False):
    """Every node that can run when the module is imported (``main``: run as the command), skipping the
    bodies of the blocks :func:`never_run` names."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if never_run(node, main):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


@cache
def imports_of(path: str, main: bool = False) -> tuple[Import, ...]:
    """The repo modules ``path`` imports, statically (function-level imports included)."""
    package = Path(path).with_suffix("").as_posix().replace("/", ".")
    if not path.endswith("__init__.py"):
        package = package.rsplit(".", 1)[0]
    else:
        package = package.removesuffix(".__init__")
    found: list[Import] = []
    for node in runtime_nodes(ast.parse((REPO / path).read_text(), path), main):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found += [Import(path, f, None) for f in parents(alias.name)]
                if (f := module_file(alias.name)):
                    found.append(Import(path, f, None))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if (f := module_file(base)) is None:
                continue
            found += [Import(path, p, None) for p in parents(base)]
            plain = set()
            for alias in node.names:
                sub = module_file(f"{base}.{alias.name}")
                if sub:  # ``from pkg import module``
                    found += [Import(path, f, None), Import(path, sub, None)]
                else:
                    plain.add(alias.name)
            if plain:
                found.append(Import(path, f, frozenset(plain)))
    return tuple(found)


def is_empty(path: str) -> bool:
    """A module with nothing but a docstring and ``from __future__`` imports runs no code."""
    body = ast.parse((REPO / path).read_text()).body
    return all((isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
               or (isinstance(n, ast.ImportFrom) and n.module == "__future__") for n in body)


def closure(roots: list[str], main: str | None = None) -> tuple[set[str], list[Import]]:
    """Every repo module reached from ``roots`` (through harmless modules too), and every import seen;
    ``main``: the module run as the command (its ``__main__`` block runs)."""
    seen, todo, edges = set(roots), list(roots), []
    while todo:
        path = todo.pop()
        for imp in imports_of(path, path == main):
            edges.append(imp)
            if imp.module not in seen:
                seen.add(imp.module)
                todo.append(imp.module)
    return seen, edges


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def code_files(dep: str) -> list[str]:
    """The repo code a dep names: the file, or the .py files under the folder."""
    if not dep.startswith(tuple(p + "/" for p in PACKAGES)) and dep not in PACKAGES:
        return []
    target = REPO / dep
    if target.is_file():
        return [dep] if dep.endswith(".py") else []
    return sorted(p.relative_to(REPO).as_posix() for p in target.rglob("*.py") if "__pycache__" not in p.parts)


def with_entries(params: dict) -> dict:
    """The paper profile (fetch, transfer, two cascades) plus a local fetch and a folder entry: every
    foreach / matrix of dvc.yaml gets at least one stage."""
    paper = merge(params, yaml.safe_load((REPO / "params.paper.yaml").read_text()))
    return merge(paper, {"fetch": {"datasets": {"local": "videos"}},
                         "evaluate": {"folders": {"mine": {"method": "mine", "dataset": "adobe240",
                                                           "protocol": "all_blurry", "path": "outside/mine"}}}})


def resolved_stages(tmp: Path, params: dict) -> dict[str, tuple[str, list[str]]]:
    """DVC's own resolution of dvc.yaml under ``params``: {stage name: (command, dep paths)}."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    shutil.copy(REPO / "dvc.yaml", tmp / "dvc.yaml")
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    repo = Repo.init(tmp, no_scm=True)
    try:
        return {s.addressing.rsplit(":", 1)[-1]: (s.cmd, [d.def_path for d in s.deps
                                                           if not isinstance(d, ParamsDependency)])
                for s in repo.index.stages}
    finally:
        repo.close()


def harmless_here(path: str, edges: list[Import]) -> bool:
    """Rule 2: ``path`` is on HARMLESS and this closure imports only its harmless names."""
    return path in HARMLESS and all(e.names is not None and e.names <= HARMLESS[path]
                                    for e in edges if e.module == path)


def loads_dynamically(path: str, edges: list[Import]) -> bool:
    """Whether this closure uses the run-time loading of ``path`` (DYNAMIC)."""
    names = DYNAMIC[path][1]
    return names is None or any(e.names is None or e.names & names for e in edges if e.module == path)


def misses(cmd: str, deps: list[str]) -> list[str]:
    """What a stage's deps leave out, one line each (empty when they cover its code)."""
    module = cmd.split("python -m ", 1)[1].split()[0]
    roots = [module_file(module) or f"<no file for {module}>"] + [f for d in deps for f in code_files(d)]
    reached, edges = closure(roots, roots[0])
    problems = [f"{path} (imported by {', '.join(sorted({e.source for e in edges if e.module == path}))})"
                for path in sorted(reached)
                if not covered(path, deps) and not harmless_here(path, edges) and not is_empty(path)]
    problems += [f"{path} loads code from {DYNAMIC[path][0]}/ at run time: list {DYNAMIC[path][0]}/<what it loads>"
                 for path in sorted(reached & DYNAMIC.keys()) if loads_dynamically(path, edges)
                 and not any(covered(f, deps) for f in code_files(DYNAMIC[path][0]))]
    return problems


@pytest.mark.parametrize("profile", ["default", "entries"])
def test_every_stage_lists_the_code_it_runs(tmp_path, profile):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    stages = resolved_stages(tmp_path, params if profile == "default" else with_entries(params))
    if profile == "entries":  # each template resolved at least once
        for template in ("fetch@", "evaluate_transfer@", "evaluate_cascade@", "evaluate_folder@", "train@"):
            assert any(name.startswith(template) for name in stages), (template, sorted(stages))
    report = {name: found for name, (cmd, deps) in stages.items() if (found := misses(cmd, deps))}
    assert not report, "deps in dvc.yaml miss code that can change the outputs:\n" + "\n".join(
        f"  {name}: {', '.join(found)}" for name, found in sorted(report.items()))


def test_harmless_modules_import_nothing_that_matters():
    problems = []
    for path in HARMLESS:
        assert (REPO / path).is_file(), f"HARMLESS names {path}, which does not exist"
        problems += [f"{path} imports {imp.module}, which is not harmless: take {path} off HARMLESS"
                     for imp in imports_of(path) if imp.module not in HARMLESS and not is_empty(imp.module)]
    assert not problems, "\n".join(problems)


def test_a_main_block_counts_only_in_the_module_run_as_the_command(tmp_path):
    """A module's ``if __name__ == "__main__":`` block runs only when it is the command: imported by a
    stage, its block's imports are no dep of that stage; run as the command, they are."""
    module = tmp_path / "tool.py"
    module.write_text("from alabench import layout\n\nif __name__ == '__main__':\n    from alabench.profiles import main\n")
    imported = {i.module for i in imports_of(str(module))}
    as_command = {i.module for i in imports_of(str(module), main=True)}
    assert "alabench/layout.py" in imported and "alabench/profiles.py" in as_command - imported
    reached, _ = closure(["stages/synth.py"], "stages/synth.py")
    assert "alabench/config.py" in reached and "alabench/profiles.py" not in reached


def test_the_check_sees_a_missing_dep(tmp_path):
    """Removing alabench/frames.py from an evaluate stage's deps must fail the check (it decodes
    every scored frame): the test can fail."""
    stages = resolved_stages(tmp_path, yaml.safe_load((REPO / "params.yaml").read_text()))
    name, (cmd, deps) = next((n, s) for n, s in stages.items() if n.startswith("evaluate@"))
    assert not misses(cmd, deps), name
    found = misses(cmd, [d for d in deps if d != "alabench/frames.py"])
    assert any(m.startswith("alabench/frames.py ") for m in found), found
    cmd, deps = stages["report"]  # rule 2: it prints tracking's provenance
    assert not misses(cmd, deps)
    found = misses(cmd, [d for d in deps if d != "alabench/tracking.py"])
    assert any(m.startswith("alabench/tracking.py ") for m in found), found


@pytest.mark.pipeline
@pytest.mark.parametrize("profile", ["default", "entries"])
def test_the_layout_names_the_stages_and_folders_dvc_generates(tmp_path, profile):
    """alabench.layout spells every stage name and output folder of dvc.yaml: the report tells the user
    which `dvc repro <stage>` makes a missing result, so every such stage must be one DVC really
    generates, every stage DVC generates must be named, and each evaluation with the results folder it
    writes, each train stage with its checkpoint and training files (read from the stages' `outs`,
    not rebuilt from the name)."""
    from dvc.repo import Repo

    from alabench import layout
    from alabench.config import parse_params

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw = raw if profile == "default" else with_entries(raw)
    raw["report"]["datasets"] = sorted({*raw["blur"]["datasets"], *raw["train"]["datasets"]})  # show every one
    stages = resolved_stages(tmp_path, raw)
    repo = Repo(tmp_path)
    try:
        writes = {s.addressing.rsplit(":", 1)[-1]: {o.def_path for o in s.outs} for s in repo.index.stages}
    finally:
        repo.close()
    params = parse_params(raw, "params.yaml")
    names = layout.stage_names(params)
    assert len(set(names)) == len(names) and set(names) == set(stages), (
        sorted(set(names) - set(stages)), sorted(set(stages) - set(names)))
    evaluations = {name for name in stages if name.startswith("evaluate")}
    expected = layout.expected_results(params)
    named = {e.stage: e.folder.as_posix() for e in expected}
    assert len(named) == len(expected), "two expected results name one stage"
    assert set(named) == evaluations, (sorted(set(named) - evaluations), sorted(evaluations - set(named)))
    for stage, folder in named.items():
        assert folder in writes[stage], (stage, folder, writes[stage])
    for e in expected:  # the train stages the report names for a missing seed: those making its checkpoints
        checkpoints = [d for d in stages[e.stage][1] if d.startswith(layout.CHECKPOINTS.name + "/")]
        upstream = {name for name, outs in writes.items() if name.startswith(("train@", "tune_cascade@"))
                    and any(o.startswith(f"{c}/") for o in outs for c in checkpoints)}
        assert set(e.train_stages()) == upstream, (e.stage, e.train_stages(), upstream)
    for method in params.train.methods:
        for dataset in params.train.datasets:
            for seed in params.train.seeds:
                outs = writes[layout.train_stage(method, dataset, seed)]
                assert layout.checkpoint(dataset, method, seed).as_posix() in outs, outs
                assert (layout.training_dir(dataset, method, seed) / layout.TRAIN_METRICS).as_posix() in outs, outs
    for i, cascade in enumerate(params.evaluate.cascades):  # each twin's tune stage writes its checkpoint
        for dataset in params.train.datasets:
            for seed in params.train.seeds:
                outs = writes[layout.tune_cascade_stage(i, dataset, seed)]
                assert layout.checkpoint(dataset, cascade.tuned_name, seed).as_posix() in outs, outs
    for dataset in params.blur.datasets:
        assert layout.prepared_dir(dataset).as_posix() in writes[layout.blur_stage(dataset)]
    for dataset in params.fetch.datasets:
        assert layout.sharp_dir(dataset).as_posix() in writes[layout.fetch_stage(dataset)]
    assert layout.sharp_dir("synth").as_posix() in writes[layout.SYNTH]
    assert layout.PARAMS_CHECKED.as_posix() in writes[layout.CHECK_PARAMS]


def test_the_committed_lock_records_only_stages_of_the_pipeline(tmp_path):
    """DVC keeps a lock entry when its stage leaves dvc.yaml (a renamed stage, a method dropped): such an
    entry names outputs and hashes no stage makes any more, and the report's provenance reads the lock.
    Prune it (delete its block from dvc.lock) when a stage goes."""
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]
    stale = sorted(set(lock) - set(resolved_stages(tmp_path, yaml.safe_load((REPO / "params.yaml").read_text()))))
    assert not stale, f"dvc.lock records stages that dvc.yaml no longer defines: {stale}"
