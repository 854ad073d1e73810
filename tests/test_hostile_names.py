"""Issue 35: a name in params.yaml is an identifier, a path is data; neither is ever run by a shell.

Hostile names (``$(...)``, backticks, ``;``, spaces, quotes, a newline, ``..``, upper case, a
leading digit) are refused with a message naming the key and the pattern, by the schema and so by
the `check_params` stage, which every stage depends on: under `dvc repro` nothing executes. Paths
reach the score stage through params.yaml: a folder whose name holds a space and shell syntax is
scored end to end, and runs nothing. The check stage also refuses, before any training, what used
to fail late: empty lists, a method without a package, a cascade whose parts do not fit."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, git_repo, repo_from, run, tiny_params

from alabench.config import ParamError, parse_params
from alabench.errors import UserError
from alabench.layout import PARAMS_CHECKED
from alabench.methods import discover
from alabench.names import NAME, method_packages

PATTERN = NAME.pattern  # [a-z][a-z0-9_]*
HOSTILE = ["x$(touch PWNED)", "x`touch PWNED`", "x;touch PWNED", "x y", "x'y", 'x"y', "x\ny", "../x", "Alanet",
           "1x", "", "x-y"]


def put_method(p: dict, where: str, name: str) -> None:
    """``name`` where a method name goes (in a list of methods run, with the `methods:` entry it needs)."""
    if where in ("train.methods", "evaluate.methods"):
        p[where.split(".")[0]]["methods"].append(name)
        p["methods"][name] = {}
    elif where.startswith("evaluate.cascades[0]."):  # the other part a real method of the other task
        p["evaluate"]["cascades"] = [{"deblur": "nafnet", "interpolate": "cain", where.rsplit(".", 1)[1]: name}]


FOLDER = {"method": "mine", "dataset": "synth", "protocol": "mixed", "path": "subs"}
NAMED = {  # the key the message names -> how a name is put there
    "train.methods[3]": lambda p, v: put_method(p, "train.methods", v),
    "evaluate.methods[1]": lambda p, v: put_method(p, "evaluate.methods", v),
    "evaluate.cascades[0].deblur": lambda p, v: put_method(p, "evaluate.cascades[0].deblur", v),
    "evaluate.cascades[0].interpolate": lambda p, v: put_method(p, "evaluate.cascades[0].interpolate", v),
    "methods key": lambda p, v: p["methods"].update({v: {}}),
    "evaluate.folders.x.method": lambda p, v: p["evaluate"].update(folders={"x": {**FOLDER, "method": v}}),
    "report.ablation[2]": lambda p, v: p["report"]["ablation"].__setitem__(2, v),
    "blur.datasets[1]": lambda p, v: p["blur"]["datasets"].append(v),
    "train.datasets[0]": lambda p, v: p["train"].update(datasets=[v]),
    "evaluate.protocols[2]": lambda p, v: p["evaluate"]["protocols"].append(v),
    "evaluate.folders.x.dataset": lambda p, v: p["evaluate"].update(folders={"x": {**FOLDER, "dataset": v}}),
    "evaluate.folders.x.protocol": lambda p, v: p["evaluate"].update(folders={"x": {**FOLDER, "protocol": v}}),
    "evaluate.transfer[0].test": lambda p, v: p["evaluate"].update(transfer=[{"test": v, "train": "synth"}]),
    "report.datasets[0]": lambda p, v: p["report"].update(datasets=[v]),
    "report.protocols[0]": lambda p, v: p["report"].update(protocols=[v]),
    "report.headline key": lambda p, v: p["report"]["headline"].update({v: "per_clip"}),
    "fetch.datasets key": lambda p, v: p["fetch"].update(datasets={v: "videos"}),
}


def refusal(mutate, value) -> str:
    data = tiny_params()
    mutate(data, value)
    with pytest.raises(ParamError) as info:
        parse_params(copy.deepcopy(data), "params.yaml")
    return str(info.value)


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
@pytest.mark.parametrize("key", list(NAMED))
def test_every_name_that_reaches_a_stage_matches_one_pattern(key, value):
    message = refusal(NAMED[key], value)
    assert message == (f"params.yaml: {key} = {value!r} is not allowed: must match {PATTERN} (it becomes part of a "
                       "folder, a DVC stage name and a stage's command)"), message


@pytest.mark.parametrize("key", ["train.methods[3]", "evaluate.cascades[0].deblur", "blur.datasets[1]"])
def test_a_name_that_is_not_a_string_is_refused_by_the_pattern(key):
    assert f"{key} = 3 is not allowed: must match {PATTERN}" in refusal(NAMED[key], 3)


@pytest.mark.parametrize("key", ["x$(touch PWNED)", "x y", "-x", "x\n", "X"])
def test_a_folder_key_names_a_stage_so_it_is_checked_too(key):
    message = refusal(lambda p, v: p["evaluate"].update(folders={v: FOLDER}), key)
    assert f"evaluate.folders key = {key!r} is not allowed: must match [a-z0-9][a-z0-9_-]*" in message


def with_folder(path: str) -> dict:
    p = tiny_params()
    p["evaluate"]["folders"] = {"mine-synth-mixed": {**FOLDER, "path": path}}
    return p


@pytest.mark.parametrize("path, why", [
    ("subs/a\nb", "a path without control characters (newline, tab)"),
    ("subs/a\tb", "a path without control characters (newline, tab)"),
    ("../elsewhere/subs", "it leaves the repository; keep the folder inside it"),
    ("subs/../../elsewhere", "it leaves the repository"),
    ("", "must be a path"),
])
def test_a_folder_path_that_cannot_be_data_is_refused_by_name(path, why):
    with pytest.raises(ParamError) as info:
        parse_params(with_folder(path), "params.yaml")
    assert str(info.value).startswith(f"params.yaml: evaluate.folders.mine-synth-mixed.path = {path!r} is not allowed: "
                                      f"{why}"), info.value


@pytest.mark.parametrize("path", ["subs/my outputs", "subs/$(touch PWNED)", "subs/`touch PWNED`", "subs/a;b",
                                  "subs/it's \"mine\"", "/data/elsewhere/subs", "subs/../subs"])
def test_a_folder_path_is_data_whatever_it_holds(path):
    assert parse_params(with_folder(path)).evaluate.folders["mine-synth-mixed"].path == path


def test_a_fetch_folder_may_be_anywhere_but_not_hold_a_newline():
    p = tiny_params()
    p["fetch"]["datasets"] = {"local": "../my videos"}
    assert parse_params(p).fetch.datasets == {"local": "../my videos"}
    p["fetch"]["datasets"] = {"local": "videos\nrm"}
    with pytest.raises(ParamError, match=r"fetch.datasets.local = 'videos\\nrm' is not allowed: a path without"):
        parse_params(p)


# --------------------------------------------------------------------------------------------
# Method packages: a folder whose name is no method name is never imported.

EXPLODES = "open({flag!r}, 'w').close()\n"


@pytest.mark.parametrize("name", ["x$(touch PWNED)", "Upper", "1x", "x y", "x-y", "x;y"])
def test_a_package_folder_named_otherwise_is_rejected_unimported(tmp_path, name):
    baselines = tmp_path / "baselines"
    (baselines / name).mkdir(parents=True)
    flag = tmp_path / "IMPORTED"
    (baselines / name / "__init__.py").write_text(EXPLODES.format(flag=str(flag)))
    assert method_packages(baselines).found == {}
    found = discover(baselines)
    assert found.methods == {} and not flag.exists()
    assert found.rejected == {f"{name}/": f"not imported: a method's name must match {PATTERN} (it names its stages "
                                          "and results folder); rename the folder"}


# --------------------------------------------------------------------------------------------
# The check stage: refuses before anything is trained, in one line, and writes its mark only when all is well.

CHECKED = PARAMS_CHECKED  # check_params writes it


def check_stage(tmp_path: Path, params: dict) -> subprocess.CompletedProcess:
    """`python -m stages.check_params` in a folder holding only ``params`` (this checkout's code and baselines/)."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "stages.check_params"], cwd=tmp_path, env=env, capture_output=True,
                          text=True)


def refused_by_check_stage(tmp_path: Path, params: dict) -> str:
    result = check_stage(tmp_path, params)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / CHECKED).exists() and not (tmp_path / "PWNED").exists()
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def check_in_process(tmp_path: Path, monkeypatch, params: dict) -> str:
    """The check stage's error message, run in this process (the methods already imported: no second torch start)."""
    from stages import check_params

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as info:
        check_params.main()
    assert not (tmp_path / CHECKED).exists()
    return str(info.value)


def test_the_check_stage_passes_good_params_and_marks_them(tmp_path):
    result = check_stage(tmp_path, tiny_params())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / CHECKED).read_text() == "params.yaml passed stages/check_params.py\n"


def test_the_check_stage_refuses_a_hostile_name_and_runs_nothing(tmp_path):
    p = tiny_params()
    put_method(p, "evaluate.methods", "x$(touch PWNED)")
    assert refused_by_check_stage(tmp_path, p) == (
        f"error: params.yaml: evaluate.methods[1] = 'x$(touch PWNED)' is not allowed: must match {PATTERN} (it "
        "becomes part of a folder, a DVC stage name and a stage's command)")


@pytest.mark.parametrize("where", ["train.methods", "evaluate.methods", "evaluate.cascades[0].deblur", "methods"])
def test_a_method_without_a_package_is_refused_by_key_with_the_known_methods(tmp_path, monkeypatch, where):
    p = tiny_params()
    if where == "methods":
        p["methods"]["sharpen"] = {}
        key = "methods.sharpen"
    else:
        put_method(p, where, "sharpen")
        key = {"train.methods": "train.methods[3]", "evaluate.methods": "evaluate.methods[1]"}.get(where, where)
    message = check_in_process(tmp_path, monkeypatch, p)
    known = ", ".join(sorted(p.name for p in (REPO / "baselines").iterdir() if (p / "__init__.py").is_file()))
    assert message == (f"params.yaml: {key} names 'sharpen', but there is no method package baselines/sharpen/; "
                       f"known methods: {known} (`python -m stages.methods new sharpen` writes a package)"), message


@pytest.mark.parametrize("deblur, interpolate, trained, message", [
    ("superslomo", "cain", ["superslomo", "cain"],  # two interpolators
     "superslomo does not address deblur (it addresses interpolate)"),
    ("unet", "nafnet", ["unet", "nafnet"],  # a deblurrer put to interpolate
     "nafnet does not address interpolate (it addresses deblur)"),
    ("nafnet", "superslomo", ["nafnet"],  # the parts fit, but superslomo would not be trained
     "superslomo trains, so it must be listed in train.methods"),
    ("nafnet", "flow_interp", ["nafnet"],  # the parts fit, but the stage loads both parts' checkpoints
     "flow_interp does not train"),
])
def test_a_cascade_that_cannot_work_is_refused_before_any_training(tmp_path, monkeypatch, deblur, interpolate, trained,
                                                                  message):
    p = tiny_params()
    p["train"]["methods"] += [m for m in trained if m not in p["train"]["methods"]]
    p["evaluate"]["cascades"] = [{"deblur": deblur, "interpolate": interpolate}]
    refused = check_in_process(tmp_path, monkeypatch, p)
    assert refused.startswith(f"evaluate.cascades entry cascade_{deblur}_{interpolate}: {message}"), refused


def test_a_cascade_that_fits_passes_the_check_stage(tmp_path, monkeypatch):
    from stages import check_params

    p = tiny_params()
    p["train"]["methods"] += ["nafnet", "superslomo"]
    p["evaluate"]["cascades"] = [{"deblur": "nafnet", "interpolate": "superslomo"}]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    check_params.main()
    assert (tmp_path / CHECKED).is_file()


@pytest.mark.parametrize("mutate, message", [
    (lambda p: (p["train"].update(methods=[]), p["evaluate"].update(methods=[])),
     "train.methods and evaluate.methods are empty, and so are evaluate.cascades and evaluate.folders: nothing would "
     "be evaluated"),
    (lambda p: p["evaluate"].update(protocols=[]), "evaluate.protocols is empty: nothing would be evaluated"),
])
def test_empty_lists_are_refused_instead_of_doing_nothing(tmp_path, mutate, message):
    p = tiny_params()
    mutate(p)
    assert refused_by_check_stage(tmp_path, p).startswith(f"error: params.yaml: {message}")


# --------------------------------------------------------------------------------------------
# Under `dvc repro`, in a tiny repository.

def ran(out: str) -> set[str]:
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}


@pytest.mark.pipeline
def test_dvc_repro_runs_no_hostile_name_even_for_a_stage_it_targets(tmp_path):
    """The method's stage even has its folder: today's DVC would run `--method x$(touch PWNED)` in a shell.
    The check stage is upstream of every stage, so it refuses the name first, whichever stage is asked for."""
    p = tiny_params()
    put_method(p, "evaluate.methods", "x$(touch PWNED)")
    repo = git_repo(tmp_path / "repo", p)
    (repo / "baselines/x$(touch PWNED)").mkdir()
    (repo / "baselines/x$(touch PWNED)/__init__.py").write_text("")
    for target in (["--glob", "evaluate@x*"], []):
        result = run([sys.executable, "-m", "dvc", "repro", *target], repo, check=False)
        assert result.returncode != 0 and ran(result.stdout) == {"check_params"}, result.stdout + result.stderr
        assert "error: params.yaml: evaluate.methods[1] = 'x$(touch PWNED)' is not allowed: must match " \
               f"{PATTERN}" in result.stderr
        assert not list(repo.rglob("PWNED")), list(repo.rglob("PWNED"))


@pytest.mark.pipeline
def test_dvc_repro_scores_a_folder_whose_path_holds_spaces_quotes_and_shell_syntax(prepared_repo, tmp_path):
    """The path travels through params.yaml, never through the stage's command line: the folder is
    scored as the folder it names, and nothing in its name runs."""
    folder = "subs/my outputs $(touch PWNED) `touch PWNED` a;touch PWNED 'q' \"d\""
    p = tiny_params()
    p["evaluate"]["folders"] = {"mine-synth-all_blurry": {
        "method": "mine", "dataset": "synth", "protocol": "all_blurry", "path": folder}}
    repo = repo_from(prepared_repo, tmp_path / "repo", p)
    run([sys.executable, "-m", "dvc", "repro", "blur@synth"], repo)
    run([sys.executable, "-m", "stages.export_inputs", "--dataset", "synth", "--protocol", "all_blurry", "--out",
         folder], repo)
    for clip in (p for p in (repo / folder).iterdir() if p.is_dir()):  # outputs: each input, as blurry_input would
        inputs = sorted(clip.glob("input_*.png"))
        for k, frame in enumerate(inputs):
            shutil.copy(frame, clip / f"deblur_{k:05d}.png")
            if k + 1 < len(inputs):
                shutil.copy(frame, clip / f"interp_{k:05d}.png")
    out = run([sys.executable, "-m", "dvc", "repro", "evaluate_folder@mine-synth-all_blurry"], repo).stdout
    assert "evaluate_folder@mine-synth-all_blurry" in ran(out) and "> python -m stages.score --entry " \
        "mine-synth-all_blurry" in out, out
    summary = json.loads((repo / "results/synth/all_blurry/mine/summary.json").read_text())
    assert summary["status"] == "ok" and summary["outputs_supplied"]["path"] == folder
    assert summary["frames"]["joint"] == 10  # 2 clips of 3 inputs: 6 deblurred, 4 interpolated
    assert not list(repo.rglob("PWNED")), list(repo.rglob("PWNED"))
