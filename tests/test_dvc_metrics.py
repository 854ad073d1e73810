"""The report's metrics as DVC users read them: `dvc metrics show` one row per evaluation and narrow,
`dvc metrics diff` naming the method that moved."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run
from test_report import METHODS, PARAMS, summary_of, write_fixture

from alabench.dvc_metrics import DIGITS, HEADLINE, SKIPPED, headline, write_metrics
from alabench.report import build_report


def metrics_repo(root: Path, methods: dict) -> Path:
    """A git + DVC repository whose only metrics are the report's folder, written from the fixture."""
    write_fixture(root, methods)
    write_metrics(build_report(root, PARAMS).table2, root / "reports" / "metrics")
    (root / "dvc.yaml").write_text("metrics:\n  - reports/metrics\n")
    (root / ".gitignore").write_text("results/\ndata/\ntraining/\ncheckpoints/\n")
    run(["git", "init", "-q"], root)
    run([sys.executable, "-m", "dvc", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-q", "-m", "baseline"], root)
    return root


@pytest.mark.pipeline
def test_one_small_file_per_evaluation_with_the_paired_difference(tmp_path):
    write_fixture(tmp_path)
    table2 = build_report(tmp_path, PARAMS).table2
    rows = headline(table2)
    assert set(rows) == {("synth", p, m) for p in ("all_blurry", "mixed") for m in METHODS}
    alanet = rows[("synth", "all_blurry", "alanet")]
    assert set(alanet) == {*HEADLINE.values(), "vs_blurry", "vs_blurry_lo", "vs_blurry_hi"}
    for (dataset, protocol, method), written in rows.items():  # every number is its summary.json's, rounded
        averages = summary_of(tmp_path, protocol, method)["averages"][PARAMS.headline[protocol]]
        for (kind, metric), key in HEADLINE.items():
            assert written[key] == pytest.approx(averages[kind][metric]["mean"], abs=0.6 * 10 ** -DIGITS), (
                dataset, protocol, method, key)
    assert alanet["vs_blurry"] == pytest.approx(3.0, abs=1e-3)  # +3 dB on every clip over blurry_input
    assert alanet["vs_blurry_lo"] <= alanet["vs_blurry"] <= alanet["vs_blurry_hi"]
    assert "vs_blurry" not in rows[("synth", "all_blurry", "blurry_input")]  # no difference to itself
    folder = write_metrics(table2, tmp_path / "reports" / "metrics")
    written = json.loads((folder / "synth" / "all_blurry" / "alanet.json").read_text())
    assert written == alanet
    # A method no longer measured leaves no stale file: the folder is swapped in whole.
    write_metrics(table2[table2["method"] != "alanet_self"], folder)
    assert not (folder / "synth" / "all_blurry" / "alanet_self.json").exists()
    assert (folder / "synth" / "all_blurry" / "alanet.json").exists()
    assert not (folder / SKIPPED).exists()  # nothing left out: no file, no row in `dvc metrics show`
    left_out = {"results/synth/all_blurry/backup_alanet": "backup_alanet is not a method of params.yaml"}
    write_metrics(table2, folder, left_out)
    assert json.loads((folder / SKIPPED).read_text()) == left_out
    write_metrics(table2, folder)
    assert not (folder / SKIPPED).exists()  # and a stale list goes with the folder


@pytest.mark.pipeline
def test_dvc_metrics_show_is_narrow_and_diff_names_the_method_that_moved(tmp_path):
    repo = metrics_repo(tmp_path, METHODS)
    shown = run([sys.executable, "-m", "dvc", "metrics", "show"], repo).stdout
    lines = shown.splitlines()
    assert lines[0].split()[0] == "Path" and "joint_psnr" in lines[0].split(), shown
    assert len(lines) == 1 + 2 * len(METHODS), shown  # one row per (protocol, method)
    assert max(map(len, lines)) < 200, shown
    markdown = run([sys.executable, "-m", "dvc", "metrics", "show", "--md"], repo).stdout
    assert markdown.splitlines()[1].startswith("|--")  # a table to paste
    moved = {**METHODS, "alanet": ([3.5] * 8, True)}  # alanet alone gains 0.5 dB on every clip
    for folder in ("results", "training", "checkpoints", "data"):
        shutil.rmtree(repo / folder)
    write_fixture(repo, moved)
    write_metrics(build_report(repo, PARAMS).table2, repo / "reports" / "metrics")
    diff = run([sys.executable, "-m", "dvc", "metrics", "diff"], repo).stdout
    changed = {line.split()[0] for line in diff.splitlines()[1:] if line.strip()}
    assert changed == {"reports/metrics/synth/all_blurry/alanet.json", "reports/metrics/synth/mixed/alanet.json"}, diff
    assert "vs_blurry " in diff and "0.5" in diff
    assert np.isfinite(json.loads((repo / "reports/metrics/synth/mixed/alanet.json").read_text())["joint_psnr"])
