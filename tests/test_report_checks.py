"""The report checks what it reads (alabench.results_check): a results folder whose summary.json lies
about its method, its numbers or its place, or that params.yaml no longer asks for, is left out of
Table 2 and reports/metrics, and named with its reason on the page and in reports/metrics/skipped.json."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from test_report import BASE, METHODS, PARAMS, fixture_frames, section, summary_of, write_fixture

from alabench.evaluation import write_results
from alabench.summary import summarize
from alabench.config import parse_params
from alabench.layout import Expected, expected_results
from alabench.report import Report, build_report, write_report
from alabench.results_check import checked_summary

ALL_BLURRY = Path("results/synth/all_blurry")
SMALL = {m: METHODS[m] for m in ("blurry_input", "alanet_self", "alanet")}  # one protocol of these: a quick report


def small(root: Path) -> None:
    write_fixture(root, SMALL, ("all_blurry",))


def edit(root: Path, method: str, change) -> None:
    """Rewrite results/synth/all_blurry/<method>/summary.json through ``change`` (a function of the dict)."""
    path = root / ALL_BLURRY / method / "summary.json"
    summary = json.loads(path.read_text())
    change(summary)
    path.write_text(json.dumps(summary))


def built(root: Path, expected: list[Expected] = (), complete: bool = False) -> tuple[Report, str, dict]:
    """The report written to root/reports: the report, its "Results left out" text, reports/metrics/skipped.json."""
    report = build_report(root, PARAMS, list(expected), complete)
    write_report(report, root / "reports")
    skipped = root / "reports" / "metrics" / "skipped.json"
    page = html.unescape(section(report.html, "skipped")) if 'id="skipped"' in report.html else ""
    return report, page, json.loads(skipped.read_text()) if skipped.is_file() else {}


def shown(report: Report, protocol: str = "all_blurry") -> set[str]:
    """The methods with measured rows in Table 2 under ``protocol``."""
    table = report.table2
    return set(table.loc[(table["source"] == "measured") & (table["protocol"] == protocol), "method"])


def joint_psnr(report: Report, method: str) -> list[float]:
    """``method``'s joint PSNR in Table 2 under all_blurry (one number per data set shown)."""
    t = report.table2
    return t.loc[(t["source"] == "measured") & (t["protocol"] == "all_blurry") & (t["method"] == method)
                 & (t["kind"] == "joint") & (t["metric"] == "psnr"), "mean"].tolist()


def metrics_files(root: Path) -> set[str]:
    return {p.stem for p in (root / "reports" / "metrics" / "synth" / "all_blurry").glob("*.json")}


def assert_left_out(page: str, skipped: dict, path: str, *reason: str) -> None:
    """``path`` is named with every part of ``reason`` on the page and in reports/metrics/skipped.json."""
    assert path in skipped, skipped
    for part in reason:
        assert part in skipped[path], skipped[path]
        assert f"{path}: " in page and part in page.split(f"{path}: ", 1)[1].split("</li>", 1)[0], page


def test_a_summary_naming_another_method_is_not_shown_under_either_name(tmp_path):
    write_fixture(tmp_path)
    edit(tmp_path, "alanet_self", lambda s: s.update(method="unet"))
    report, page, skipped = built(tmp_path)
    assert shown(report) == {"blurry_input", "alanet", "alanet_cross"}
    assert "alanet_self" in shown(report, "mixed")  # the untouched protocol still shows it
    assert metrics_files(tmp_path) == {"blurry_input", "alanet", "alanet_cross"}
    assert_left_out(page, skipped, "results/synth/all_blurry/alanet_self/summary.json",
                    "says method 'unet', but its folder is for method 'alanet_self'")


def test_a_999_db_mean_outside_its_interval_is_never_best(tmp_path):
    small(tmp_path)
    edit(tmp_path, "blurry_input", lambda s: s["averages"]["per_clip"]["joint"]["psnr"].update(mean=999.0))
    report, page, skipped = built(tmp_path)
    assert "blurry_input" not in shown(report) and "blurry_input" not in metrics_files(tmp_path)
    table = report.table2
    best = table[(table["source"] == "measured") & table["best"].astype(bool) & (table["protocol"] == "all_blurry")
                 & (table["kind"] == "joint") & (table["metric"] == "psnr")]
    assert best["method"].tolist() == ["alanet"]
    assert_left_out(page, skipped, "results/synth/all_blurry/blurry_input/summary.json",
                    "averages.per_clip.joint.psnr: 999 dB is above its psnr_cap 50 dB",
                    "averages.per_clip.joint.psnr: mean 999 lies outside its own interval",
                    f"averages.per_clip.joint.psnr.mean is 999.0, but frames.csv gives {float(np.mean(BASE))!r}")


@pytest.mark.parametrize("says", ["flow_interp", "backup_flow_interp"])
def test_a_backup_folder_sorting_first_with_raised_numbers_does_not_replace_the_result(tmp_path, says):
    """A copy of flow_interp's folder, its frames and summary raised by 3 dB alike (so they agree): left
    out because its name is not its method's, or, renamed throughout, because params.yaml names no such method."""
    write_fixture(tmp_path, {"blurry_input": METHODS["blurry_input"], "flow_interp": ([1.0] * 8, False)},
                  ("all_blurry",))
    real, backup = tmp_path / ALL_BLURRY / "flow_interp", tmp_path / ALL_BLURRY / "backup_flow_interp"
    shutil.copytree(real, backup)
    frames = pd.read_csv(backup / "frames.csv")
    frames["psnr"] += 3.0
    frames.to_csv(backup / "frames.csv", index=False)
    summary = json.loads((backup / "summary.json").read_text())
    summary.update(summarize(frames, 50.0, 200, 0.95, 0), method=says)
    (backup / "summary.json").write_text(json.dumps(summary))
    expected = [Expected("synth", "all_blurry", m, f"evaluate@{m}-synth-all_blurry")
                for m in ("blurry_input", "flow_interp")]
    real_mean = summary_of(tmp_path, "all_blurry", "flow_interp")["averages"]["per_clip"]["joint"]["psnr"]["mean"]
    assert summary["averages"]["per_clip"]["joint"]["psnr"]["mean"] == pytest.approx(real_mean + 3.0)
    report, page, skipped = built(tmp_path, expected, complete=True)
    assert shown(report) == {"blurry_input", "flow_interp"}
    assert joint_psnr(report, "flow_interp") == [real_mean]  # the real result, not the raised copy
    assert json.loads((tmp_path / "reports/metrics/synth/all_blurry/flow_interp.json").read_text())[
        "joint_psnr"] == pytest.approx(real_mean, abs=1e-4)
    assert not (tmp_path / "reports/metrics/synth/all_blurry/backup_flow_interp.json").exists()
    assert_left_out(page, skipped, "results/synth/all_blurry/backup_flow_interp",
                    "backup_flow_interp is not a method of params.yaml")
    if says == "flow_interp":  # without params.yaml at hand, the summary's own name gives the copy away
        report, page, skipped = built(tmp_path)
        assert joint_psnr(report, "flow_interp") == [real_mean]
        assert_left_out(page, skipped, "results/synth/all_blurry/backup_flow_interp/summary.json",
                        "says method 'flow_interp', but its folder is for method 'backup_flow_interp'")


def test_a_method_removed_from_params_yaml_leaves_table2_and_the_metrics(tmp_path, monkeypatch):
    """The stage itself, with params.yaml's train.methods no longer naming alanet_self."""
    write_fixture(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["methods"].remove("alanet_self")
    params["report"]["mlflow"] = False
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    from stages import report as stage

    stage.main()
    table2 = pd.read_csv(tmp_path / "reports" / "table2.csv")
    assert "alanet_self" not in set(table2["method"]) and "alanet" in set(table2["method"])
    assert "alanet_self" not in metrics_files(tmp_path) and "alanet" in metrics_files(tmp_path)
    page = html.unescape(section((tmp_path / "reports" / "index.html").read_text(), "skipped"))
    skipped = json.loads((tmp_path / "reports" / "metrics" / "skipped.json").read_text())
    for protocol in ("all_blurry", "mixed"):
        assert_left_out(page, skipped, f"results/synth/{protocol}/alanet_self",
                        "alanet_self is not a method of params.yaml", "add it there, or move the folder out")


@pytest.mark.parametrize("averages", [[25.0, 0.8, 0.2], "25.0"], ids=["list", "string"])
def test_averages_that_are_not_a_mapping_give_a_note_not_a_traceback(tmp_path, averages):
    small(tmp_path)
    edit(tmp_path, "alanet", lambda s: s.update(averages=averages))
    report, page, skipped = built(tmp_path)
    assert "alanet" not in shown(report) and "alanet" not in metrics_files(tmp_path)
    assert_left_out(page, skipped, "results/synth/all_blurry/alanet/summary.json",
                    "does not fit the summary.json schema: averages: Input should be a valid dictionary")


def raise_joint(summary: dict) -> None:
    """+3 dB on the headline joint PSNR, its interval moved along: only frames.csv can tell."""
    cell = summary["averages"]["per_clip"]["joint"]["psnr"]
    cell.update(mean=cell["mean"] + 3.0, ci=[cell["ci"][0] + 3.0, cell["ci"][1] + 3.0])


def test_a_mean_inconsistent_with_frames_csv_is_left_out(tmp_path):
    small(tmp_path)
    true = summary_of(tmp_path, "all_blurry", "alanet_self")["averages"]["per_clip"]["joint"]["psnr"]["mean"]
    edit(tmp_path, "alanet_self", raise_joint)  # would be best, 2 dB above alanet
    report, page, skipped = built(tmp_path)
    assert "alanet_self" not in shown(report) and "alanet_self" not in metrics_files(tmp_path)
    assert_left_out(page, skipped, "results/synth/all_blurry/alanet_self/summary.json",
                    f"averages.per_clip.joint.psnr.mean is {true + 3.0!r}, but frames.csv gives {true!r}")


def test_a_summary_without_its_frames_csv_is_left_out(tmp_path):
    small(tmp_path)
    (tmp_path / ALL_BLURRY / "alanet" / "frames.csv").unlink()
    report, page, skipped = built(tmp_path)
    assert "alanet" not in shown(report)
    assert_left_out(page, skipped, "results/synth/all_blurry/alanet/summary.json",
                    "results/synth/all_blurry/alanet/frames.csv is missing, so its numbers cannot be checked")


@pytest.mark.parametrize("key", ["psnr_cap", "method", "averages", "by_input"])
def test_a_summary_missing_a_key_is_left_out(tmp_path, key):
    small(tmp_path)
    edit(tmp_path, "alanet_self", lambda s: s.pop(key))
    report, page, skipped = built(tmp_path)
    assert "alanet_self" not in shown(report) and "alanet_self" not in metrics_files(tmp_path)
    assert_left_out(page, skipped, "results/synth/all_blurry/alanet_self/summary.json",
                    f"does not fit the summary.json schema: {key}: Field required")


def test_a_missing_average_is_named_by_its_place(tmp_path):
    small(tmp_path)
    edit(tmp_path, "alanet", lambda s: s["averages"]["per_clip_mse"]["interp"].pop("ssim"))
    _, page, skipped = built(tmp_path)
    assert_left_out(page, skipped, "results/synth/all_blurry/alanet/summary.json",
                    "averages.per_clip_mse.interp.ssim: Field required")


def test_a_hand_score_shadowed_by_the_pipelines_result_is_named(tmp_path):
    write_fixture(tmp_path, {"blurry_input": METHODS["blurry_input"], "alanet": METHODS["alanet"]}, ("all_blurry",))
    shutil.copytree(tmp_path / ALL_BLURRY / "alanet", tmp_path / "outside/synth/all_blurry/alanet")
    report, page, skipped = built(tmp_path)
    assert shown(report) == {"blurry_input", "alanet"}
    assert_left_out(page, skipped, "outside/synth/all_blurry/alanet",
                    "results/ holds a result of the same name, which is shown")


def test_a_genuine_evaluation_passes_every_check(tmp_path):
    """What the evaluate stage writes (frames.csv rounded to 6 decimals, three seeds, videos cut into
    several clips, frames returned exactly) is accepted as it is: the checks raise no false alarm."""
    rng = np.random.default_rng(3)
    frames = pd.concat([fixture_frames(list(rng.normal(2.0, 0.5, 8)), "mixed", keeps_sharp=True).assign(seed=s)
                        for s in (0, 1, 2)], ignore_index=True)
    frames["video"] = frames["clip"].str[:1] + (frames["clip"].str[1:].astype(int) // 3).astype(str)
    frames["psnr"] += rng.normal(0, 1e-3, len(frames))
    folder = tmp_path / "results" / "synth" / "mixed" / "alanet"
    summary = {"status": "ok", "error": None, "method": "alanet", "dataset": "synth", "protocol": "mixed",
               "tasks": ["deblur", "interpolate"], "trains": True, **summarize(frames, 50.0, 300, 0.95, 7)}
    write_results(folder, frames, summary, [])
    assert summary["units"] == {"unit": "video", "count": 3} and summary["seeds"] == ["0", "1", "2"]
    assert checked_summary(tmp_path, folder, "synth", "mixed", {("synth", "mixed", "alanet")}) == json.loads(
        (folder / "summary.json").read_text())


def test_a_cascade_is_an_evaluation_params_yaml_asks_for(tmp_path):
    """evaluate.cascades entries write results too: shown, and named with their stage while missing."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["evaluate"]["cascades"] = [{"deblur": "alanet", "interpolate": "superslomo"}]
    expected = expected_results(parse_params(raw, "params.yaml"))
    cascade = "cascade_alanet_superslomo"
    assert "evaluate_cascade@cascade0-synth-mixed" in {e.stage for e in expected if e.method == cascade}
    write_fixture(tmp_path, {"blurry_input": METHODS["blurry_input"], cascade: METHODS["alanet"]}, ("all_blurry",))
    report, page, skipped = built(tmp_path, expected, complete=True)
    assert shown(report) == {"blurry_input", cascade} and skipped == {}
    assert f"{cascade} on synth / mixed: not run — dvc repro evaluate_cascade@cascade0-synth-mixed" in report.html
