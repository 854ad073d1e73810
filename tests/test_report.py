"""The report: tables from fixture results (numbers, bold best, not-separable marks, † rows apart),
escaping, partial results, MLflow, and the page in real headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from cdp import chromium
from conftest import REPO, run
from PIL import Image

from alabench.config import ReportParams
from alabench.summary import COLUMNS, summarize
from alabench.frames import write_png
from alabench.report import build_report, write_report

EVIL = "<script>alert(1)</script>"
PARAMS = ReportParams(datasets=("synth",), protocols=("all_blurry", "mixed"),
                      ablation=("alanet_self", "alanet_cross", "alanet"), residue_max=64.0, zoom=8, mlflow=False,
                      headline={"all_blurry": "per_clip", "mixed": "per_clip_mse"})
UNITS = [f"c{u}" for u in range(8)]
BASE = [20.0 + 3.0 * u for u in range(8)]  # clips differ by 21 dB: unpaired intervals are wide
# method -> (PSNR offset over BASE per unit, trains). alanet is best; alanet_cross swings +-0.8 dB around
# 0.05 below it (paired: not separable); alanet_self sits 1 dB below it on every unit (paired: separable,
# although its unpaired interval overlaps alanet's); blurry_input is the reference.
METHODS = {"blurry_input": ([0.0] * 8, False), "alanet_self": ([2.0 + 0.01 * u for u in range(8)], True),
           "alanet_cross": ([2.95 + (0.8 if u % 2 else -0.8) for u in range(8)], True),
           "alanet": ([3.0] * 8, True)}


def fixture_frames(offsets: list[float], protocol: str, keeps_sharp: bool) -> pd.DataFrame:
    """frames.csv of one method: per clip two deblurred inputs and one interpolation. Under mixed the
    first input is sharp: returned exactly (PSNR inf) by a method that keeps sharp inputs, else 45 dB."""
    rows = []
    shift = 1.0 if protocol == "mixed" else 0.0
    for unit, base, offset in zip(UNITS, BASE, offsets):
        value = base + offset + shift
        sharp_psnr = (np.inf if keeps_sharp else 45.0) if protocol == "mixed" else value
        for k, kind, psnr, blurry in ((0, "deblur", sharp_psnr, int(protocol != "mixed")), (1, "deblur", value, 1),
                                      (0, "interp", value, 1)):
            rows.append({"seed": "", "video": unit, "clip": unit, "k": k, "kind": kind, "input_blurry": blurry,
                         "psnr": psnr, "ssim": min(0.99, value / 60), "lpips": max(0.01, 1 - value / 60)})
    return pd.DataFrame(rows, columns=COLUMNS)


def write_fixture(root: Path, methods: dict = METHODS, protocols: tuple[str, ...] = ("all_blurry", "mixed")) -> None:
    """results/synth/<protocol>/<method>/ in exactly the evaluate stage's layout (summary.json computed
    from frames.csv by the evaluation's own ``summarize``), with sample PNGs."""
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    for name in ("gt_d.png", "gt_d1.png", "gt_i.png", "in0.png", "in1.png"):
        write_png(root / "data" / name, gt)
    for protocol in protocols:
        for i, (method, (offsets, trains)) in enumerate(methods.items()):
            folder = root / "results" / "synth" / protocol / (method if "<" not in method else "evil")
            (folder / "samples").mkdir(parents=True)
            frames = fixture_frames(offsets, protocol, keeps_sharp=not trains)
            summary = {"status": "ok", "error": None, "method": method, "dataset": "synth", "protocol": protocol,
                       "device": "cpu", "tasks": ["deblur", "interpolate"], "trains": trains, "parameters": 1000 * i,
                       "seconds_per_frame": 0.001 * (i + 1), **summarize(frames, 50.0, 200, 0.95, 0)}
            (folder / "summary.json").write_text(json.dumps(summary))
            frames.to_csv(folder / "frames.csv", index=False)
            noisy = np.clip(gt.astype(int) + rng.integers(-10 * i, 10 * i + 1, gt.shape), 0, 255).astype(np.uint8)
            rows = []  # clip c0 kept whole (its 2 inputs deblurred, 1 interpolation): the viewer's clip
            for k, kind, target, inputs in ((0, "deblur", "data/gt_d.png", "data/in0.png"),
                                            (0, "interp", "data/gt_i.png", "data/in0.png data/in1.png"),
                                            (1, "deblur", "data/gt_d1.png", "data/in1.png")):
                write_png(folder / "samples" / f"c0_{k:03d}_{kind}.png", noisy)
                rows.append({"clip": "c0", "k": k, "kind": kind, "inputs": inputs, "target": target,
                             "output": str((folder / "samples" / f"c0_{k:03d}_{kind}.png").relative_to(root))})
            pd.DataFrame(rows)[["clip", "k", "kind", "output", "inputs", "target"]].to_csv(
                folder / "samples" / "samples.csv", index=False)
    history = root / "training" / "synth" / "alanet" / "seed0" / "history.csv"
    history.parent.mkdir(parents=True)
    history.write_text("epoch,step,lr,train_loss,joint_psnr\n1,10,0.001,0.2,25.0\n2,20,0.001,0.1,27.0\n")
    checkpoint = root / "checkpoints" / "synth" / "alanet" / "seed0" / "model.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights")  # the curve is drawn only for a run whose checkpoint exists


def section(page: str, anchor: str) -> str:
    return page.split(f'id="{anchor}"', 1)[1].split("</section>", 1)[0]


def rows_of(table_html: str, body: str) -> list[str]:
    part = table_html.split(f'<tbody class="{body}">', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr.*?</tr>", part, re.S)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("results")
    write_fixture(root)
    report = build_report(root, PARAMS)
    write_report(report, root / "reports")
    return root, report.html


def summary_of(root: Path, protocol: str, method: str) -> dict:
    return json.loads((root / "results" / "synth" / protocol / method / "summary.json").read_text())


def test_one_table2_per_protocol_marks_come_from_paired_intervals(rendered):
    root, page = rendered
    assert page.index('id="table2-all_blurry"') < page.index('id="table2-mixed"')
    assert page.count('<section class="protocol"') == 2
    for protocol in ("all_blurry", "mixed"):
        convention = PARAMS.headline[protocol]
        rows = {re.search(r'class="method">([^<]*)', r).group(1): r for r in rows_of(section(page, f"table2-{protocol}"), "measured")}
        assert list(rows) == ["blurry_input", "alanet", "alanet_cross", "alanet_self"]  # baselines first
        # joint PSNR is the 7th number column: deblur(3) interp(3) joint(PSNR ...)
        cells = {m: re.findall(r'<td class="([^"]*)"[^>]*>(.*?)</td>', r)[1:] for m, r in rows.items()}
        best = summary_of(root, protocol, "alanet")["averages"][convention]["joint"]["psnr"]
        worse = summary_of(root, protocol, "alanet_self")["averages"][convention]["joint"]["psnr"]
        assert cells["alanet"][6] == ("best", f"{best['mean']:.2f} ± {(best['ci'][1] - best['ci'][0]) / 2:.2f}")
        assert cells["alanet_cross"][6][0] == "tie" and "<sup>≈</sup>" in cells["alanet_cross"][6][1]
        # alanet_self's unpaired interval overlaps the best one's, yet it is 1 dB lower on every clip: separable
        assert worse["ci"][1] > best["ci"][0]
        assert cells["alanet_self"][6][0] == ""
        assert cells["blurry_input"][6][0] == ""
        assert cells["alanet"][8][0] == "best"  # LPIPS: lower is better, alanet still lowest
    table2 = pd.read_csv(root / "reports" / "table2.csv")
    measured = table2[table2["source"] == "measured"]
    best = measured[(measured["best"]) & (measured["kind"] == "joint") & (measured["metric"] == "psnr")]
    assert sorted(best["method"]) == ["alanet", "alanet"]
    assert best.loc[best["protocol"] == "all_blurry", "mean"].item() == pytest.approx(np.mean(BASE) + 3.0)
    assert dict(zip(measured["protocol"], measured["convention"])) == PARAMS.headline
    # the paired columns: alanet is exactly 3 dB above blurry_input on every clip; alanet_cross vs the best
    row = measured.query("protocol == 'all_blurry' and kind == 'joint' and metric == 'psnr'").set_index("method")
    assert row.loc["alanet", ["vs_blurry", "vs_blurry_lo", "vs_blurry_hi"]].tolist() == pytest.approx([3.0] * 3)
    assert row.loc["alanet_cross", "vs_best"] == pytest.approx(-0.05)
    assert row.loc["alanet_cross", "vs_best_lo"] < 0 < row.loc["alanet_cross", "vs_best_hi"]
    assert row.loc["alanet_self", "vs_best_hi"] < 0 and np.isnan(row.loc["alanet", "vs_best"])
    assert np.isnan(row.loc["blurry_input", "vs_blurry"]) and (row["units"] == 8).all()


def test_who_beats_whom_is_paired(rendered):
    _, page = rendered
    table = section(page, "table2-all_blurry")
    joint = table.split("Who beats whom: joint deblurring and interpolation PSNR", 1)[1].split("</table>", 1)[0]
    rows = {re.search(r'class="method">([^<]*)', r).group(1): re.findall(r'<td class="(\w*)"', r)
            for r in re.findall(r"<tr><th class=\"method\">.*?</tr>", joint, re.S)}
    order = ["blurry_input", "alanet", "alanet_cross", "alanet_self"]
    assert list(rows) == order
    assert rows["alanet"] == ["win", "self", "tie", "win"]
    assert rows["alanet_cross"] == ["win", "tie", "self", "win"]  # vs alanet: its +-0.8 dB swings
    assert rows["alanet_self"] == ["win", "loss", "loss", "self"]
    assert rows["blurry_input"] == ["self", "loss", "loss", "loss"]


def test_paper_rows_are_separate_and_marked(rendered):
    root, page = rendered
    table = section(page, "table2-all_blurry")
    assert "†" not in "".join(rows_of(table, "measured"))
    paper_rows = rows_of(section(page, "paper"), "paper")
    assert sum('class="dagger"' in r for r in paper_rows) == 7 and "BIN₄ [25] †" in "".join(paper_rows)
    assert "33.71" in "".join(paper_rows) and "0.9504" in "".join(paper_rows)  # ALANet, Adobe240 / YouTube240
    table2 = pd.read_csv(root / "reports" / "table2.csv")
    paper = table2[table2["source"] == "paper"]
    assert paper["protocol"].isna().all() and paper["ci_lo"].isna().all()
    assert paper.query("method == 'ALANET (Ours)' and kind == 'joint' and dataset == 'adobe240' and metric == 'psnr'")[
        "mean"].item() == 33.34


def test_table3_ablation_and_the_other_sections(rendered):
    root, page = rendered
    rows = rows_of(section(page, "table3-all_blurry"), "measured")
    assert [re.search(r'class="method">([^<]*)', r).group(1) for r in rows] == ["alanet_self", "alanet_cross", "alanet"]
    assert "only Cross-Attention †" in section(page, "table3-mixed")
    table3 = pd.read_csv(root / "reports" / "table3.csv")
    assert set(table3.loc[table3["source"] == "measured", "kind"]) == {"deblur", "interp"}
    assert set(table3.loc[table3["source"] == "paper", "method"]) == {"only Self-Attention", "only Cross-Attention", "ALANET"}
    compare = section(page, "protocols")
    mixed = summary_of(root, "mixed", "alanet")["averages"]["per_clip_mse"]["joint"]["psnr"]["mean"]
    assert f"33.50 / {mixed:.2f} ({mixed - 33.5:+.2f})" in compare  # alanet's joint PSNR, all_blurry / mixed
    svb = section(page, "sharp-vs-blurry")
    # blurry_input returns its 8 sharp inputs exactly (8 capped, 50.00 dB); alanet scores them 45 dB
    assert re.search(r"blurry_input</th><td>synth</td>\s*<td>sharp</td><td>8</td><td>8</td>\s*<td>–</td>\s*<td>50.00</td>", svb)
    assert re.search(r"alanet</th><td>synth</td>\s*<td>sharp</td><td>8</td><td>0</td>\s*<td>–</td>\s*<td>45.00</td>", svb)
    figures = section(page, "figures")
    shown = re.findall(r'<img src="(assets/figures/[^"]+)" loading="lazy"', figures)
    assert len(shown) == 2 * 3 + 1  # strip, residues, per-unit x 2 protocols; training
    assert all((root / "reports" / path).stat().st_size > 1000 for path in shown)
    assert "data:image" not in page
    assert "Git commit" in page and "per_clip" in section(page.replace("<footer", "<section").replace(
        "</footer>", "</section>"), "provenance")


def test_a_method_name_and_error_are_escaped(tmp_path):
    write_fixture(tmp_path, {EVIL: METHODS["blurry_input"], "alanet": METHODS["alanet"]}, ("all_blurry",))
    failed = tmp_path / "results" / "synth" / "all_blurry" / "broken"
    failed.mkdir()
    (failed / "summary.json").write_text(json.dumps({"status": "failed", "method": "broken", "error": f"boom {EVIL}"}))
    page = build_report(tmp_path, PARAMS).html
    assert EVIL not in page
    assert html.escape(EVIL) in page and f"boom {html.escape(EVIL)}" in page


def test_outputs_supplied_are_marked_with_the_folder_hash(tmp_path):
    write_fixture(tmp_path, {"blurry_input": METHODS["blurry_input"], "bin": ([2.0] * 8, False)}, ("all_blurry",))
    path = tmp_path / "results/synth/all_blurry/bin/summary.json"
    supplied = {"path": "submissions/bin", "sha256": "ab12" * 16}
    path.write_text(json.dumps({**json.loads(path.read_text()), "outputs_supplied": supplied}))
    page = build_report(tmp_path, PARAMS).html
    rows = {re.search(r'class="method">(\w+)', r).group(1): r for r in rows_of(section(page, "table2-all_blurry"), "measured")}
    assert f"outputs supplied · synth sha256 {'ab12' * 3}" in rows["bin"]
    assert f'title="synth: submissions/bin sha256 {"ab12" * 16}"' in rows["bin"]
    assert "outputs supplied" not in rows["blurry_input"]
    runtime = re.search(r'<th class="method">bin</th>.*?</tr>', section(page, "runtime"), re.S).group(0)
    assert "<td>outputs supplied</td>" in runtime


def test_scores_made_by_hand_in_outside_are_shown_and_marked(tmp_path):
    """`stages.score` writes outside/<dataset>/<protocol>/<method>/ by default: read, and marked as such."""
    write_fixture(tmp_path, {"blurry_input": METHODS["blurry_input"], "mine": ([2.0] * 8, False)}, ("all_blurry",))
    (tmp_path / "outside/synth/all_blurry").mkdir(parents=True)
    (tmp_path / "results/synth/all_blurry/mine").rename(tmp_path / "outside/synth/all_blurry/mine")
    path = tmp_path / "outside/synth/all_blurry/mine/summary.json"
    supplied = {"path": "elsewhere/mine", "sha256": "cd34" * 16}
    path.write_text(json.dumps({**json.loads(path.read_text()), "outputs_supplied": supplied}))
    page = build_report(tmp_path, PARAMS).html
    rows = {re.search(r'class="method">(\w+)', r).group(1): r for r in rows_of(section(page, "table2-all_blurry"), "measured")}
    assert f"scored by hand, not by dvc repro (outside/) · synth sha256 {'cd34' * 3}" in rows["mine"]
    assert f"{np.mean(BASE) + 2.0:.2f}" in rows["mine"] and "scored by hand" not in rows["blurry_input"]


def test_empty_and_partial_results_render_and_say_what_is_missing(tmp_path):
    page = build_report(tmp_path, PARAMS).html
    assert "results/synth/all_blurry/: no method evaluated yet" in page and "no measured result yet" in page
    (tmp_path / "results" / "synth" / "mixed" / "bad").mkdir(parents=True)
    (tmp_path / "results" / "synth" / "mixed" / "bad" / "summary.json").write_text("{not json")
    assert "results/synth/mixed/bad/summary.json: unreadable" in build_report(tmp_path, PARAMS).html


def test_stage_logs_a_report_run_with_tags_metrics_and_artifacts(tmp_path):
    write_fixture(tmp_path, {"alanet": METHODS["alanet"]}, ("all_blurry",))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["report"].update(protocols=["all_blurry"], mlflow=True)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copytree(REPO / "stages", tmp_path / "stages")
    run([sys.executable, "-m", "stages.report"], tmp_path)
    assert (tmp_path / "reports" / "index.html").is_file()
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["alabench-synth"], filter_string="tags.stage = 'report'")
    assert len(runs) == 1
    assert runs.loc[0, "tags.dataset"] == "synth" and runs.loc[0, "tags.mlflow.runName"] == "report"
    assert runs.loc[0, "metrics.all_blurry.alanet.joint.psnr"] == pytest.approx(np.mean(BASE) + 3.0)
    artifacts = {Path(a.path).name for a in mlflow.MlflowClient().list_artifacts(runs.loc[0, "run_id"])}
    assert artifacts == {"index.html", "table2.csv", "table3.csv", "metrics", "joint.csv", "assets"}
    logged = {Path(a.path).name for a in mlflow.MlflowClient().list_artifacts(runs.loc[0, "run_id"], "assets/figures")}
    assert logged == {p.name for p in (tmp_path / "reports" / "assets" / "figures").iterdir()} and logged
    metrics = json.loads((tmp_path / "reports" / "metrics" / "synth" / "all_blurry" / "alanet.json").read_text())
    assert metrics["joint_psnr"] == pytest.approx(np.mean(BASE) + 3.0, abs=1e-4)
    joint = pd.read_csv(tmp_path / "reports" / "joint.csv")
    assert joint.loc[0, "run"] == "alanet (all_blurry, synth)" and joint.loc[0, "psnr"] == pytest.approx(33.5)


def test_page_opens_in_headless_chromium_with_tables_and_no_console_errors(rendered, tmp_path):
    root, _ = rendered
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
    url = (root / "reports" / "index.html").as_uri()
    result = subprocess.run([chromium(), *flags, f"--screenshot={shot}", "--window-size=1280,2000", url],
                            capture_output=True, text=True, timeout=120)
    assert shot.is_file(), result.stderr
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape == (2000, 1280)
    dark = image < 128  # text, table borders, figures
    assert dark.mean() > 0.01 and dark[:400].mean() > 0.005  # not blank; the top (title, Table 2) has content
    dom = subprocess.run([chromium(), *flags[:-3], f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<table") >= 6 and "alanet_cross" in dom


def test_dot_folders_left_by_a_killed_evaluation_are_never_read(tmp_path):
    write_fixture(tmp_path)
    leftover = tmp_path / "results" / "synth" / "mixed" / ".alanet.l_h2y34p.tmp"
    leftover.mkdir()
    (leftover / "summary.json").write_text("{half")
    page = build_report(tmp_path, PARAMS).html
    assert ".alanet.l_h2y34p.tmp" not in page and "unreadable" not in page


def test_test_videos_kept_with_flags_are_named(tmp_path):
    write_fixture(tmp_path)
    raw = tmp_path / "data" / "raw" / "synth"
    raw.mkdir(parents=True)
    columns = ("source", "id", "split", "status", "reason", "capture_fps", "capture_fps_from", "container_fps",
               "width", "height", "frames", "timing_jitter", "flags", "clips", "key")
    rows = [("z.zip", "IMG_0183.MOV", "test", "ok", "irregular frame timing: <51%>", "240", "container", "244",
             "1280", "720", "30", "0.510", "irregular_timing", "IMG_0183-000", "k1"),
            ("z.zip", "IMG_0001.mov", "train", "ok", "irregular", "240", "container", "240", "1280", "720", "30",
             "0.510", "irregular_timing", "IMG_0001-000", "k2"),
            ("z.zip", "IMG_0200.mov", "test", "ok", "", "240", "container", "240", "1280", "720", "30", "0.000", "",
             "IMG_0200-000", "k3")]
    (raw / "manifest.csv").write_text("\n".join(",".join(r) for r in [columns, *rows]) + "\n")
    flagged = section(build_report(tmp_path, PARAMS).html, "flagged")
    assert "synth/IMG_0183.MOV (irregular_timing): irregular frame timing: &lt;51%&gt;" in flagged  # escaped
    assert "IMG_0001" not in flagged and "IMG_0200" not in flagged  # train videos and unflagged ones: not named


def test_a_result_params_ask_for_is_named_in_the_headline_of_each_data_set_it_lacks(tmp_path):
    """A method expected on two data sets with no result on either gets a "not run" row, with its own
    command, in the headline table of each (not only of the last data set)."""
    from alabench.layout import Expected

    write_fixture(tmp_path, protocols=("all_blurry",))
    shutil.copytree(tmp_path / "results" / "synth", tmp_path / "results" / "adobe240")
    for path in (tmp_path / "results" / "adobe240").glob("*/*/summary.json"):
        path.write_text(json.dumps({**json.loads(path.read_text()), "dataset": "adobe240"}))
    params = ReportParams(**{**PARAMS.__dict__, "datasets": ("synth", "adobe240"), "protocols": ("all_blurry",)})
    expected = [Expected(d, "all_blurry", "ghost", f"evaluate@ghost-{d}-all_blurry") for d in params.datasets]
    page = section(build_report(tmp_path, params, expected).html, "table2-all_blurry")
    headlines = re.findall(r'<table class="results headline.*?</table>', page, re.S)
    assert len(headlines) == 2
    for dataset, table in zip(params.datasets, headlines):
        assert f"{dataset} · all_blurry" in table
        assert f"not run — <code>dvc repro evaluate@ghost-{dataset}-all_blurry</code>" in table
