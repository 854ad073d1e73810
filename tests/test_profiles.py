"""`make repro PROFILE=<name>` runs params.<name>.yaml as the DVC experiment <name> in a temporary
copy: params.yaml stays byte for byte (comments included), the workspace keeps the default's
results, and `dvc exp show`, the experiment's report and MLflow name the profile."""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alabench.config import ParamError
from alabench.profiles import overrides, profile_command
from conftest import REPO, mlflow_logging, repo_from, run, run_env, small_params

pytestmark = pytest.mark.pipeline  # each test runs a profile through `dvc exp run`

DVC = [sys.executable, "-m", "dvc"]
COLUMN = "reports/metrics/synth/all_blurry/blurry_input.json:joint_psnr"
RESTORE = "git checkout HEAD -- . && python -m dvc checkout"  # docs/reproducing.md: back to the default's results


def experiment_line(repo: Path) -> str:
    """The page's "DVC experiment ..." line, empty outside an experiment."""
    page = (repo / "reports" / "index.html").read_text()
    return page.split('id="experiment"', 1)[1].split("</p>", 1)[0] if 'id="experiment"' in page else ""


def make_commands(repo: Path, profile: str) -> str:
    """The recipe `make repro PROFILE=<profile>` runs, from `make -n` on the project's Makefile,
    without its `venv` prerequisite (the test's venv is already there)."""
    shown = run(["make", "--no-print-directory", "-n", "-f", str(REPO / "Makefile"), "repro", f"PROFILE={profile}"],
                repo).stdout  # (run by `make test`, a nested make would print "Entering directory" lines)
    return "\n".join(line for line in shown.splitlines() if "alabench.bootstrap" not in line)


@pytest.fixture(scope="module")
def repo(prepared_repo, tmp_path_factory) -> Path:
    """The tiny pipeline reproduced and committed, with a commented params.yaml and a tiny profile."""
    repo = repo_from(prepared_repo, tmp_path_factory.mktemp("profiles") / "repo", small_params())
    params = repo / "params.yaml"
    params.write_text("# the default run   (comments and spacing must survive a profile run)\n"
                      + params.read_text().replace("\nsynth:", "\n\n# synthetic footage\nsynth:", 1))
    (repo / "params.tiny.yaml").write_text("evaluate:\n  psnr_cap: 20.0   # caps every frame: the metrics move\n")
    with mlflow_logging(False):  # the tests read the experiments' MLflow runs, not the baseline's
        run([*DVC, "repro", "--quiet"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "baseline results"], repo)
    return repo


def test_profile_run_leaves_the_workspace_and_names_itself(repo):
    before = (repo / "params.yaml").read_bytes()
    lock = (repo / "dvc.lock").read_bytes()
    commands = make_commands(repo, "tiny")
    done = subprocess.run(["bash", "-c", commands], cwd=repo, env=run_env(repo), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (repo / "params.yaml").read_bytes() == before, commands
    assert (repo / "dvc.lock").read_bytes() == lock  # the default's results are still the workspace's
    assert run(["git", "status", "--porcelain", "--untracked-files=no"], repo).stdout == ""
    rows = list(csv.DictReader(io.StringIO(run([*DVC, "exp", "show", "--csv"], repo).stdout)))
    tiny = next(r for r in rows if r["Experiment"] == "tiny")
    default = next(r for r in rows if r["rev"] == "workspace")
    assert tiny["evaluate.psnr_cap"] == "20.0" and default["evaluate.psnr_cap"] != "20.0"
    assert tiny[COLUMN] and default[COLUMN] and float(tiny[COLUMN]) < float(default[COLUMN])
    with sqlite3.connect(repo / "mlflow.db") as con:
        tagged = {name for (name,) in con.execute("select r.name from runs r join tags t on r.run_uuid = t.run_uuid "
                                                  "where t.key = 'dvc_exp' and t.value = 'tiny'")}
    assert {"evaluate blurry_input all_blurry", "report"} <= tagged, tagged
    # The profile's own page, kept with the experiment, names it; the documented command brings the
    # default's back, params.yaml byte for byte.
    run([*DVC, "exp", "apply", "tiny"], repo)
    assert "<code>tiny</code>" in experiment_line(repo)
    assert (repo / "params.yaml").read_bytes() != before
    back = run(["bash", "-c", RESTORE], repo)
    assert (repo / "params.yaml").read_bytes() == before and (repo / "dvc.lock").read_bytes() == lock, back.stdout
    assert experiment_line(repo) == ""


def test_overrides_give_the_merge_result():
    """One ``++key=value`` per leaf, typed: a profile's keys arrive as merging the file would set them
    (an empty mapping merges to no change)."""
    overlay = {"a": {"b": 2.5, "c": [{"deblur": "x", "interpolate": 'y"z'}]}, "d": {"k": "some/path", "n": None},
               "e": {}, "f": True}
    assert overrides(overlay) == ["++a.b=2.5", r'++a.c=[{deblur: "x", interpolate: "y\"z"}]', '++d.k="some/path"',
                                  "++d.n=null", "++f=true"]


def test_a_bad_profile_stops_before_dvc(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(small_params(), sort_keys=False))
    bad = tmp_path / "params.typo.yaml"
    bad.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ParamError, match=r"params.typo.yaml: unknown key 'train.epoch' \(did you mean 'train.epochs'"):
        profile_command(bad, params)
    with pytest.raises(ParamError, match="params.nope.yaml: no such profile file; PROFILE= takes one of"):
        profile_command(tmp_path / "params.nope.yaml", params)
    odd = tmp_path / "params.Big One.yaml"
    odd.write_text("train:\n  epochs: 3\n")
    with pytest.raises(ParamError, match="the experiment name 'Big One' is not allowed"):
        profile_command(odd, params)


def test_set_changes_a_key_of_the_profile_for_one_named_run(tmp_path):
    """``--set`` replaces (or adds) one key of the overlay before the same checks and overrides;
    ``--name`` names the experiment; a malformed or unknown key stops before DVC, naming it."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(small_params(), sort_keys=False))
    profile = tmp_path / "params.long.yaml"
    profile.write_text("train:\n  epochs: 3\n  seeds: [0, 1, 2]\n")
    command = profile_command(profile, params, sets=["train.seeds=[0]", "evaluate.psnr_cap=20"], name="long-seed0")
    assert command[command.index("-n") + 1] == "long-seed0"
    sets = [command[i + 1] for i, arg in enumerate(command) if arg == "-S"]
    assert sets == ["++train.epochs=3", "++train.seeds=[0]", "++evaluate.psnr_cap=20"]
    assert "[0, 1, 2]" in profile.read_text()  # the file itself is not changed
    with pytest.raises(ParamError, match=r"unknown key 'train.seed' \(did you mean 'train.seeds'"):
        profile_command(profile, params, sets=["train.seed=[0]"])
    with pytest.raises(ParamError, match="--set 'seeds': give it as section.key=value"):
        profile_command(profile, params, sets=["seeds"])
    with pytest.raises(ParamError, match="'epochs' is not a section"):
        profile_command(profile, params, sets=["train.epochs.x=1"])


@pytest.mark.usefixtures("no_mlflow")  # reads no MLflow run
def test_a_second_experiment_restores_the_trainings_it_shares(repo):
    """DVC's run cache keeps each train stage (every out cached), so a later experiment restores the
    training an earlier one made instead of rerunning it: here the second changes only the report's
    zoom. (The evaluations rerun: their results persist across a failed run, and DVC keeps no stage
    with a persistent output in its run cache.)"""
    profile = [sys.executable, "-m", "alabench.profiles", "--experiment", "params.tiny.yaml"]
    first = run([*profile, "--name", "seed1", "--set", "train.seeds=[1]"], repo)
    assert "Running stage 'train@alanet-synth-1'" in first.stdout, first.stdout
    second = run([*profile, "--name", "seed1-zoom", "--set", "train.seeds=[1]", "--set", "report.zoom=40"], repo)
    ran = {line.split("'")[1] for line in second.stdout.splitlines() if line.startswith("Running stage")}
    assert "Stage 'train@alanet-synth-1' is cached - skipping run" in second.stdout, second.stdout
    assert not {stage for stage in ran if stage.startswith("train@")} and "report" in ran, second.stdout
