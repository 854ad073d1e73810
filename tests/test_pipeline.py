"""End to end: `dvc repro` of synth + blur in a temporary git repository, then `dvc status` clean."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from alabench.blur import read_manifest
from conftest import git_repo, run, tiny_params


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git repository holding this working tree (committed and uncommitted files) and tiny params."""
    return git_repo(tmp_path_factory.mktemp("repo"), tiny_params())


def test_dvc_repro_then_status_is_clean(repo):
    stages = run([sys.executable, "-m", "dvc", "stage", "list"], repo).stdout
    assert "fetch@" not in stages  # by default no stage goes online (fetch.datasets is empty)
    run([sys.executable, "-m", "dvc", "repro"], repo)
    for protocol in ("all_blurry", "mixed"):
        rows = read_manifest(repo / f"data/prepared/synth/test/{protocol}/manifest.csv")
        assert len(rows) == 2 * 3  # 2 test clips of 27 frames = 3 inputs each
        assert all((repo / r["input"]).is_file() and (repo / r["gt_deblur"]).is_file() for r in rows)
    assert len(list((repo / "data/sharp/synth/train").iterdir())) == 4
    status = run([sys.executable, "-m", "dvc", "status"], repo).stdout
    assert "Data and pipelines are up to date" in status, status
    again = run([sys.executable, "-m", "dvc", "repro", "synth", "blur"], repo).stdout
    assert "didn't change, skipping" in again and "Running stage" not in again


def test_a_bad_param_stops_the_stage_with_its_name(repo, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(repo, work, ignore=shutil.ignore_patterns("data", ".git"))
    params = tiny_params()
    params["synth"]["width"] = -4
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    result = run([sys.executable, "-m", "stages.synth"], work, check=False)
    assert result.returncode == 1
    assert "params.yaml: synth.width = -4 is not allowed" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (work / "data/sharp/synth").exists()


def test_a_broken_frame_stops_blur_and_keeps_the_previous_output(repo, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(repo, work, ignore=shutil.ignore_patterns(".git"))
    run([sys.executable, "-m", "stages.blur", "--dataset", "synth"], work)
    before = (work / "data/prepared/synth/test/mixed/manifest.csv").read_bytes()
    victim = sorted((work / "data/sharp/synth/test").iterdir())[0] / "00004.png"
    victim.write_bytes(b"not a png")
    result = run([sys.executable, "-m", "stages.blur", "--dataset", "synth"], work, check=False)
    assert result.returncode == 1
    assert f"{victim.relative_to(work)}: cannot read this PNG" in result.stderr
    assert (work / "data/prepared/synth/test/mixed/manifest.csv").read_bytes() == before
