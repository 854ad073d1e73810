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
* the scaffold's printed steps quoted in docs/methods.md are what it prints;
* every path under results/, outside/, checkpoints/, training/ or data/ and every DVC stage name the
  pages state is one alabench.layout produces (a placeholder such as <dataset> stands for any value;
  a real method's stage must be one params.yaml or a profile generates).
The stand-in of docs/outside-results.md is run in tests/test_submission.py.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import shlex
import typing
from functools import cache
from pathlib import Path

import click
import pytest
import yaml
from dvc.cli import DvcParserError
from dvc.cli import parse_args as dvc_parse_args
from conftest import REPO, tiny_params
from test_methods import assert_contract, write_method

from alabench import layout
from alabench.config import DatasetName, load_params, parse_params
from alabench.methods import discover
from alabench.names import KEY, NAME
from alabench.scaffold import next_steps
from alabench.vocabulary import PROTOCOLS

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
        from mlflow.cli import cli as mlflow_cli  # 1.6 s to import: only the worker that checks one pays

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


# --------------------------------------------------------------------------------------------
# Paths and stage names: every one the pages state is one alabench.layout produces.

PLACEHOLDER = r"<[^<>/\s]+>"  # <dataset>, <d>, <k>, <knock-out>: a value the reader fills in
SLOTS = {  # what each argument of a layout function may be on a page: a placeholder or a real value
    "SLOTmethodSLOT": rf"(?P<method>{PLACEHOLDER}|{NAME.pattern})",
    "SLOTdatasetSLOT": rf"(?:{PLACEHOLDER}|{'|'.join(typing.get_args(typing.get_args(DatasetName)[0]))})",
    "SLOTprotocolSLOT": rf"(?:{PLACEHOLDER}|{'|'.join(PROTOCOLS)})",
    "SLOTnumberSLOT": rf"(?:{PLACEHOLDER}|\d+)",
    "SLOTkeySLOT": rf"(?:{PLACEHOLDER}|{KEY.pattern})",
    "SLOTsplitSLOT": rf"(?:{PLACEHOLDER}|train|test)",
    "SLOTanySLOT": r"[^/]+",
}
M, D, P, N, K, SPLIT, ANY = (f"SLOT{s}SLOT" for s in ("method", "dataset", "protocol", "number", "key", "split", "any"))
BELOW = "**"  # anything further down a folder the layout names but does not fill itself


def _regex(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    for slot, rule in SLOTS.items():
        pattern = pattern.replace(slot, rule)
    return re.compile(pattern)


@cache
def path_templates() -> list[list[re.Pattern[str] | str]]:
    """Every path alabench.layout produces, as component patterns (with their files)."""
    result_files = [layout.FRAMES, layout.SUMMARY, f"{layout.SAMPLES}/{layout.SAMPLES_CSV}", f"{layout.SAMPLES}/{ANY}",
                    layout.PROBES]
    paths = [*(str(layout.result_dir(D, P, M, base=base) / f) for base in (layout.RESULTS, layout.OUTSIDE)
               for f in result_files),
             *(str(layout.probe_frames(layout.result_dir(D, P, M, base=base), ANY))
               for base in (layout.RESULTS, layout.OUTSIDE)),
             str(layout.checkpoint(D, M, N)),
             *(str(layout.training_dir(D, M, N) / f) for f in (layout.HISTORY, layout.TRAIN_METRICS)),
             str(layout.sharp_dir(D, SPLIT) / BELOW), str(layout.sharp_dir(D) / ANY), str(layout.raw_dir(D) / BELOW),
             str(layout.prepared_dir(D, P) / BELOW), str(layout.WEIGHTS / ANY), str(layout.PARAMS_CHECKED),
             str(layout.clip_cache(D) / BELOW), str(layout.train_state(D, M, N)),
             f"{layout.train_state(D, M, N)}.corrupt"]  # a damaged state moved aside (alabench.training)
    return [[c if c == BELOW else _regex(c) for c in p.split("/")] for p in paths]


STAGE_TEMPLATES = [_regex(s) for s in (
    layout.CHECK_PARAMS, layout.SYNTH, layout.WEIGHTS_STAGE, layout.REPORT, layout.fetch_stage(D), layout.blur_stage(D),
    layout.train_stage(M, D, N), layout.evaluate_stage(M, D, P), layout.evaluate_trained_stage(M, D, P),
    layout.evaluate_transfer_stage(M, N, P), layout.evaluate_cascade_stage(N, D, P), layout.evaluate_folder_stage(K))]
FAMILIES = sorted({t.pattern.split("@")[0] for t in STAGE_TEMPLATES if "@" in t.pattern}, key=len, reverse=True)
FOLDERS = ("results", "outside", "checkpoints", "training", "data")
TRUNCATED = ("…", "*")  # `train@bin…`, `evaluate@blurry_input-synth-*`, `training/…`: the start of one
STATED_PATH = re.compile(rf"(?<![\w/.-])(?:{'|'.join(FOLDERS)})/(?:\{{[^{{}}\s]*\}}|[^\s`'\"(),;:{{])*")
STATED_STAGE = re.compile(rf"(?<![\w/.-])(?:{'|'.join(FAMILIES)})@[^\s`'\"(),;:/]*")


def stated(pattern: re.Pattern[str]) -> list:
    """(page, token) for each match anywhere on the pages: prose, inline code and blocks (indented
    ones in a list item included)."""
    return [(page.relative_to(REPO).as_posix(), token) for page in PAGES
            for token in sorted({t.rstrip(".") for t in pattern.findall(page.read_text())})]


def _expand(path: str) -> list[str]:
    """`results/…/{frames.csv,samples/}` -> each path it stands for."""
    match = re.fullmatch(r"(.*?)\{([^{}]*)\}(.*)", path)
    return [p for alt in match[2].split(",") for p in _expand(f"{match[1]}{alt}{match[3]}")] if match else [path]


def layout_makes_path(path: str) -> bool:
    """Whether ``path`` (or, ending in … or /, the start of a path) is one of :func:`path_templates`;
    ``{a,b}`` stands for each of its paths."""
    return all(_one_path(p) for p in _expand(path))


def _one_path(path: str) -> bool:
    parts = [p for p in path.rstrip("/").split("/") if p not in TRUNCATED]
    if parts and parts[-1].endswith(TRUNCATED):
        parts[-1] = parts[-1].rstrip("…*")
    parts = [p for p in parts if not p.startswith(".")]  # an atomic write's hidden work folder (.adobe240.partial)
    for template in path_templates():
        if all(BELOW in template[:i] or (i < len(template) and (template[i] == BELOW or template[i].fullmatch(p)))
               for i, p in enumerate(parts)):
            return True
    return False


def layout_makes_stage(name: str, known: set[str], methods: set[str]) -> bool:
    """Whether ``name`` is a stage name alabench.layout produces: a real method's stage must be one that
    params.yaml or a profile really generates (`evaluate@alanet-…` is not: alanet trains)."""
    if name.endswith(TRUNCATED) or name.endswith("@"):  # the start of one: each whole part fits its slot
        family, _, rest = name.rstrip("…*").partition("@")
        for template in STAGE_TEMPLATES:
            head, _, slots = template.pattern.partition("@")
            if head == re.escape(family) and (not rest or len(rest.split("-")) <= len(slots.split(r"\-"))):
                if all(re.fullmatch(s, p) for s, p in zip(slots.split(r"\-"), rest.split("-")[:-1])):
                    return True
        return False
    for template in STAGE_TEMPLATES:
        if (match := template.fullmatch(name)):
            method = match.groupdict().get("method")
            return name in known or method is None or method not in methods
    return False


def profiles() -> list:
    """params.yaml and params.yaml under each profile (params.<name>.yaml)."""
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    return [parse_params(base)] + [parse_params(merged(base, yaml.safe_load(p.read_text())), p.name)
                                   for p in sorted(REPO.glob("params.*.yaml"))]


def test_the_pages_state_only_paths_the_layout_makes():
    wrong = [f"{page}: {path}" for page, path in stated(STATED_PATH) if not layout_makes_path(path)]
    assert not wrong, "paths alabench.layout does not produce:\n" + "\n".join(wrong)


def test_the_pages_state_only_stage_names_the_layout_makes():
    every = profiles()
    known = {name for p in every for name in layout.stage_names(p)}
    methods = {m for p in every for m in (*p.train.methods, *p.evaluate.methods, *p.methods)}
    names = stated(STATED_STAGE)
    assert len(names) > 20, names
    wrong = [f"{page}: {name}" for page, name in names if not layout_makes_stage(name, known, methods)]
    assert not wrong, "stage names alabench.layout does not produce (for params.yaml, its profiles):\n" + "\n".join(wrong)


@pytest.mark.parametrize("stated_path, makes", [
    ("results/<dataset>/<protocol>/<method>/summary.json", True), ("results/synth/mixed/alanet/", True),
    ("results/<d>/<p>/<m>/{frames.csv,summary.json,samples/}", True), ("training/…", True),
    ("checkpoints/<d>/<m>/seed<k>/model.pt", True), ("data/cache/train/synth-alanet-seed0.pt", True),
    ("results/<method>/<dataset>/summary.json", False),  # the folders' order swapped
    ("checkpoints/<d>/<m>/<k>/model.pt", False), ("results/synth/mixed/alanet/summary.csv", False),
    ("training/<d>/<m>/seed<k>/model.pt", False), ("data/prepared/<d>/<p>", False), ("results/vimeo/", False),
])
def test_the_path_check_can_fail(stated_path, makes):
    assert layout_makes_path(stated_path) is makes


@pytest.mark.parametrize("name, makes", [
    ("train@alanet-synth-0", True), ("evaluate_trained@alanet-synth-mixed", True), ("train@bin…", True),
    ("evaluate@median3-synth-all_blurry", True),  # an example method of the docs: the shape is checked
    ("evaluate_cascade@cascade<i>-<dataset>-<protocol>", True), ("evaluate_folder@bin-synth-all_blurry", True),
    ("evaluate@alanet-synth-mixed", False),  # alanet trains: evaluate_trained@
    ("train@alanet-synth", False), ("train@alanet-0-synth", False), ("evaluate_transfer@alanet-0-mixed", False),
    ("evaluate_cascade@0-synth-mixed", False), ("evaluate@blurry_input-synth-blurry", False),
])
def test_the_stage_check_can_fail(name, makes):
    every = profiles()
    known = {n for p in every for n in layout.stage_names(p)}
    assert layout_makes_stage(name, known, {m for p in every for m in p.methods}) is makes
