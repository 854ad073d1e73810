"""The README and docs/ tell the truth about the code: every code example is run or checked.

* python blocks compile; a block that registers a method is saved as a method package,
  discovered and put through the contract every method keeps (with the options the page's yaml
  gives it);
* yaml blocks whose keys are params.yaml sections, merged into the params, are accepted by the
  schema;
* shell blocks: every `python -m <module>` names an importable module and flags it defines, every
  `make <target>` a target of the Makefile, every `dvc` (or `python -m dvc`) command and `mlflow`
  command parses with that tool's own parser (subcommand and flags exist), and every `dvc repro`
  target is a stage of dvc.yaml;
* every relative link reaches a file, and its #anchor a heading there;
* the scaffold's printed steps quoted in docs/methods.md are what it prints.
The stand-in of docs/outside-results.md is run in tests/test_submission.py.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import shlex
from pathlib import Path

import click
import pytest
import yaml
from dvc.cli import DvcParserError
from dvc.cli import parse_args as dvc_parse_args
from mlflow.cli import cli as mlflow_cli
from conftest import REPO, tiny_params
from test_methods import assert_contract, write_method

from alabench.config import load_params, parse_params
from alabench.methods import discover
from alabench.scaffold import next_steps

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
SECTIONS = set(yaml.safe_load((REPO / "params.yaml").read_text()))
STAGES = set(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])


def blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text()) if lang == language]


def all_blocks(language: str) -> list:
    """Every ``language`` block as a pytest param (where, text), its id the page and block number."""
    return [pytest.param(f"{page.relative_to(REPO)}#{i}", body, id=f"{page.relative_to(REPO)}#{i}")
            for page in PAGES for i, body in enumerate(blocks(page, language))]


def test_the_readme_is_short_and_the_docs_are_pages():
    assert len((REPO / "README.md").read_text().splitlines()) <= 300
    assert {p.stem for p in PAGES[1:]} >= {"protocol", "datasets", "methods", "training", "evaluation", "reports",
                                           "outside-results", "errors", "parameters"}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")).replace(" ", "-")


def test_every_relative_link_reaches_a_file_and_heading():
    broken = []
    for page in PAGES:
        text = FENCE.sub("", page.read_text())
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md":
                headings = {slug(h) for h in re.findall(r"^#+ (.+)$", FENCE.sub("", dest.read_text()), re.M)}
                if anchor not in headings:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


@pytest.mark.parametrize("where,code", all_blocks("python"))
def test_python_examples_compile(where, code):
    compile(code, where, "exec")


METHOD_NAME = re.compile(r"""(?:frame_method\(|Method\(name=)["'](\w+)["']""")


def method_examples() -> list:
    """(where, name, code, its options from the page's yaml) of every block that registers a method."""
    found = []
    for page in PAGES:
        options: dict[str, dict] = {}
        for body in blocks(page, "yaml"):
            options.update((yaml.safe_load(body) or {}).get("methods") or {})
        for i, body in enumerate(blocks(page, "python")):
            if "register(" in body and (m := METHOD_NAME.search(body)):
                where = f"{page.relative_to(REPO)}#{i}"
                found.append(pytest.param(where, m.group(1), body, options.get(m.group(1)) or {}, id=where))
    return found


@pytest.mark.parametrize("where,name,code,options", method_examples())
def test_method_examples_register_and_keep_the_contract(tmp_path, where, name, code, options):
    write_method(tmp_path, name, code)
    found = discover(tmp_path)
    assert found.rejected == {}, found.rejected
    data = tiny_params()
    data["methods"][name] = options
    assert_contract(found.methods[name], parse_params(data))


def merged(base: dict, change: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in change.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.mark.parametrize("where,text", all_blocks("yaml"))
def test_params_examples_are_accepted(where, text):
    change = yaml.safe_load(text)
    assert isinstance(change, dict) and set(change) <= SECTIONS, f"{where}: not a params.yaml excerpt"
    parse_params(merged(tiny_params(), change))


def commands() -> list:
    out = []
    for block in all_blocks("bash"):
        where, body = block.values
        for line in body.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                out.append(pytest.param(where, shlex.split(line), id=f"{where}: {line[:40]}"))
    return out


@pytest.mark.parametrize("where,argv", commands())
def test_shell_examples_name_what_exists(where, argv):
    makefile = (REPO / "Makefile").read_text()
    if argv[0] == "make":
        for target in (a for a in argv[1:] if "=" not in a):
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"{where}: no make target {target}"
    elif argv[:1] == ["dvc"] or argv[:3] == ["python", "-m", "dvc"]:
        args = argv[1:] if argv[0] == "dvc" else argv[3:]
        try:
            parsed = dvc_parse_args(args)
        except (DvcParserError, SystemExit):
            pytest.fail(f"{where}: DVC's own parser refuses `dvc {shlex.join(args)}`")
        for target in (parsed.targets or []) if args[:1] == ["repro"] else []:
            assert target.split("@")[0] in STAGES, f"{where}: no stage {target} in dvc.yaml"
    elif argv[:1] == ["mlflow"] or argv[:3] == ["python", "-m", "mlflow"]:
        args = argv[1:] if argv[0] == "mlflow" else argv[3:]
        context = click.Context(mlflow_cli, info_name="mlflow")
        name, command, rest = mlflow_cli.resolve_command(context, list(args))
        command.make_context(name, rest, parent=context)  # click.UsageError on an unknown command or option
    elif argv[:2] == ["python", "-m"]:
        spec = importlib.util.find_spec(argv[2])
        assert spec is not None and spec.origin, f"{where}: no module {argv[2]}"
        source = Path(spec.origin).read_text()
        for flag in (a for a in argv[3:] if a.startswith("--")):
            assert f'"{flag.split("=")[0]}"' in source, f"{where}: {argv[2]} has no flag {flag}"
        if argv[2] == "stages.methods" and argv[3:4] == ["new"]:
            assert 'argv[:1] == ["new"]' in source


def test_the_scaffold_steps_quoted_in_the_docs_are_what_it_prints():
    text = (REPO / "docs/methods.md").read_text()
    assert next_steps("mymethod", False, load_params(REPO / "params.yaml")) in text, (
        "docs/methods.md quotes the steps `python -m stages.methods new mymethod` prints; update the quote")
