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
from conftest import REPO, run
from PIL import Image

from alabench.config import ReportParams
from alabench.frames import write_png
from alabench.report import build_report, write_report

EVIL = "<script>alert(1)</script>"
PARAMS = ReportParams(datasets=("synth",), protocols=("all_blurry", "mixed"),
                      ablation=("alanet_self", "alanet_cross", "alanet"), residue_max=64.0, zoom=8, mlflow=False)
# method -> joint PSNR mean and interval half-width under all_blurry (mixed adds 1 dB).
# alanet is best; alanet_cross overlaps it (not separable); alanet_self and blurry_input do not.
METHODS = {"blurry_input": (25.0, 0.5, False), "alanet_self": (28.0, 0.5, True),
           "alanet_cross": (29.5, 1.0, True), "alanet": (30.0, 1.0, True)}


def _cell(mean: float, half: float) -> dict:
    return {"mean": mean, "ci": [mean - half, mean + half]}


def _averages(psnr: float, half: float) -> dict:
    """Both conventions, same numbers; SSIM and LPIPS derived so the same method is best everywhere."""
    kinds = {kind: {"psnr": _cell(psnr + d, half), "ssim": _cell(psnr / 40 + d / 100, 0.001),
                    "lpips": _cell(1 - psnr / 40, 0.001)}
             for kind, d in (("deblur", 0.5), ("interp", -0.5), ("joint", 0.0))}
    return {"per_clip": kinds, "per_frame": kinds}


def write_fixture(root: Path, methods: dict = METHODS, protocols: tuple[str, ...] = ("all_blurry", "mixed")) -> None:
    """results/synth/<protocol>/<method>/ in exactly the evaluate stage's layout, with sample PNGs."""
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    for name in ("gt_d.png", "gt_i.png", "in0.png", "in1.png"):
        write_png(root / "data" / name, gt)
    for protocol in protocols:
        for i, (method, (psnr, half, trains)) in enumerate(methods.items()):
            psnr += protocol == "mixed"
            folder = root / "results" / "synth" / protocol / (method if "<" not in method else "evil")
            (folder / "samples").mkdir(parents=True)
            summary = {"status": "ok", "error": None, "method": method, "dataset": "synth", "protocol": protocol,
                       "device": "cpu", "tasks": ["deblur", "interpolate"], "trains": trains, "parameters": 1000 * i,
                       "seconds_per_frame": 0.001 * (i + 1), "clips": 2,
                       "frames": {"deblur": 4, "interp": 2, "joint": 6}, "psnr_cap": 50.0,
                       "psnr_capped": {"deblur": 1, "interp": 0, "joint": 1},
                       "bootstrap": {"resamples": 100, "confidence": 0.95, "seed": 0, "unit": "clip"},
                       "averages": _averages(psnr, half),
                       "by_input": {s: {"frames": {"deblur": 2, "interp": 1, "joint": 3}, **_averages(psnr + d, half)}
                                    for s, d in (("sharp", 5.0), ("blurry", -5.0))}}
            (folder / "summary.json").write_text(json.dumps(summary))
            pd.DataFrame({"clip": ["a", "a", "a", "b", "b", "b"], "k": [0, 1, 0, 0, 1, 0],
                          "kind": ["deblur", "deblur", "interp"] * 2, "input_blurry": [0, 1, 1, 0, 1, 1],
                          "psnr": [np.inf, psnr, psnr, psnr, psnr, psnr], "ssim": 0.9, "lpips": 0.1}).to_csv(
                folder / "frames.csv", index=False)
            noisy = np.clip(gt.astype(int) + rng.integers(-10 * i, 10 * i + 1, gt.shape), 0, 255).astype(np.uint8)
            rows = []
            for kind, target, inputs in (("deblur", "data/gt_d.png", "data/in0.png"),
                                         ("interp", "data/gt_i.png", "data/in0.png data/in1.png")):
                write_png(folder / "samples" / f"a_000_{kind}.png", noisy)
                rows.append({"clip": "a", "k": 0, "kind": kind, "inputs": inputs, "target": target,
                             "output": str((folder / "samples" / f"a_000_{kind}.png").relative_to(root))})
            pd.DataFrame(rows)[["clip", "k", "kind", "output", "inputs", "target"]].to_csv(
                folder / "samples" / "samples.csv", index=False)
    history = root / "training" / "synth" / "alanet" / "history.csv"
    history.parent.mkdir(parents=True)
    history.write_text("epoch,step,lr,train_loss,joint_psnr\n1,10,0.001,0.2,25.0\n2,20,0.001,0.1,27.0\n")


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


def test_one_table2_per_protocol_all_blurry_first_with_numbers_and_marks(rendered):
    root, page = rendered
    assert page.index('id="table2-all_blurry"') < page.index('id="table2-mixed"')
    assert page.count('<section class="protocol"') == 2
    for protocol, shift in (("all_blurry", 0.0), ("mixed", 1.0)):
        rows = {re.search(r'class="method">(.*?)</th>', r).group(1): r for r in rows_of(section(page, f"table2-{protocol}"), "measured")}
        assert list(rows) == ["blurry_input", "alanet", "alanet_cross", "alanet_self"]  # baselines first
        # joint PSNR is the 7th number column: deblur(3) interp(3) joint(PSNR ...)
        cells = {m: re.findall(r'<td class="([^"]*)"[^>]*>(.*?)</td>', r)[1:] for m, r in rows.items()}
        assert cells["alanet"][6] == ("best", f"{30.0 + shift:.2f} ± 1.00")
        assert cells["alanet_cross"][6][0] == "tie" and "<sup>≈</sup>" in cells["alanet_cross"][6][1]
        assert cells["alanet_self"][6] == ("", f"{28.0 + shift:.2f} ± 0.50")
        assert cells["blurry_input"][6][0] == ""
        assert cells["alanet"][8][0] == "best"  # LPIPS: lower is better, alanet still lowest
    table2 = pd.read_csv(root / "reports" / "table2.csv")
    measured = table2[table2["source"] == "measured"]
    best = measured[(measured["best"]) & (measured["kind"] == "joint") & (measured["metric"] == "psnr")]
    assert sorted(best["method"]) == ["alanet", "alanet"] and sorted(best["mean"]) == [30.0, 31.0]
    assert (measured["convention"] == "per_clip").all()


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
    assert [re.search(r'class="method">(.*?)</th>', r).group(1) for r in rows] == ["alanet_self", "alanet_cross", "alanet"]
    assert "only Cross-Attention †" in section(page, "table3-mixed")
    table3 = pd.read_csv(root / "reports" / "table3.csv")
    assert set(table3.loc[table3["source"] == "measured", "kind"]) == {"deblur", "interp"}
    assert set(table3.loc[table3["source"] == "paper", "method"]) == {"only Self-Attention", "only Cross-Attention", "ALANET"}
    compare = section(page, "protocols")
    assert "30.00 / 31.00 (+1.00)" in compare  # alanet's joint PSNR, all_blurry / mixed
    svb = section(page, "sharp-vs-blurry")
    assert "36.00" in svb and "26.00" in svb  # alanet, mixed, joint PSNR sharp (+5) and blurry (-5)
    assert re.search(r"<td>sharp</td><td>3</td><td>1</td>", svb)  # 3 frames, one capped (inf)
    figures = section(page, "figures")
    assert figures.count("data:image/png;base64,") == 2 * 3 + 1  # strip, residues, per-clip x 2 protocols; training
    assert "Git commit" in page and "per_clip" in section(page.replace("<footer", "<section").replace(
        "</footer>", "</section>"), "provenance")


def test_a_method_name_and_error_are_escaped(tmp_path):
    write_fixture(tmp_path, {EVIL: (25.0, 0.5, False), "alanet": (30.0, 1.0, True)}, ("all_blurry",))
    failed = tmp_path / "results" / "synth" / "all_blurry" / "broken"
    failed.mkdir()
    (failed / "summary.json").write_text(json.dumps({"status": "failed", "method": "broken", "error": f"boom {EVIL}"}))
    page = build_report(tmp_path, PARAMS).html
    assert EVIL not in page
    assert html.escape(EVIL) in page and f"boom {html.escape(EVIL)}" in page


def test_outputs_supplied_are_marked_with_the_folder_hash(tmp_path):
    write_fixture(tmp_path, {"blurry_input": (25.0, 0.5, False), "bin": (27.0, 0.5, False)}, ("all_blurry",))
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


def test_empty_and_partial_results_render_and_say_what_is_missing(tmp_path):
    page = build_report(tmp_path, PARAMS).html
    assert "results/synth/all_blurry/: no method evaluated yet" in page and "no measured result yet" in page
    (tmp_path / "results" / "synth" / "mixed" / "bad").mkdir(parents=True)
    (tmp_path / "results" / "synth" / "mixed" / "bad" / "summary.json").write_text("{not json")
    assert "results/synth/mixed/bad/summary.json: unreadable" in build_report(tmp_path, PARAMS).html


def test_stage_logs_a_report_run_with_tags_metrics_and_artifacts(tmp_path):
    write_fixture(tmp_path, {"alanet": (30.0, 1.0, True)}, ("all_blurry",))
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
    assert runs.loc[0, "metrics.all_blurry.alanet.joint.psnr"] == 30.0
    artifacts = {Path(a.path).name for a in mlflow.MlflowClient().list_artifacts(runs.loc[0, "run_id"])}
    assert artifacts == {"index.html", "table2.csv", "table3.csv", "metrics.json", "joint.csv"}
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert metrics["synth"]["all_blurry"]["alanet"]["joint"]["psnr"] == 30.0
    assert set(metrics["synth"]["all_blurry"]["alanet"]) == {"deblur", "interp", "joint"}
    joint = pd.read_csv(tmp_path / "reports" / "joint.csv")
    assert joint.loc[0, "run"] == "alanet (all_blurry, synth)" and joint.loc[0, "psnr"] == 30.0


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: `apt-get install -y chromium` (.ci/run does it in CI)")
    return found


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
