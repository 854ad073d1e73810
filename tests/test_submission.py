"""Methods run elsewhere: export the inputs, score a folder of outputs like any method, refuse bad folders,
and under `dvc repro` rerun only the evaluation whose folder changed."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import random_clip, repo_from, run, tiny_params, write_clip
from PIL import Image

from alabench.blur import prepare_split
from alabench.config import parse_params
from alabench.datasets import iter_test_clips
from alabench.errors import UserError
from alabench.evaluation import evaluate_clips, model_outputs
from alabench.summary import COLUMNS, summarize
from alabench.inference import ClipRunner
from alabench.layout import prepared_dir
from alabench.frames import read_png, write_png
from alabench.methods import build_model, get_method
from alabench.metrics import Lpips, to_uint8
from alabench.submission import (
    PROTOCOL_FILE,
    evaluate_folder,
    export_inputs,
    read_inputs,
    summary_table,
)

PARAMS = parse_params(tiny_params())
CFG = PARAMS.evaluate


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A repository-like folder with two prepared test clips of 3 inputs (27 sharp frames, 32x48)."""
    root = tmp_path_factory.mktemp("repo")
    rng = np.random.default_rng(7)
    for clip in ("a", "b"):
        write_clip(root / "data/sharp/synth/test" / clip, random_clip(rng, 27, 32, 48))
    prepare_split(root / "data/sharp/synth/test", root / "data/prepared/synth/test", PARAMS.blur, root=root)
    return root


@pytest.fixture(scope="module")
def lpips(weights_dir) -> Lpips:
    return Lpips(weights_dir)


def exported(root: Path, protocol: str, out: Path) -> Path:
    export_inputs(read_inputs(root, "synth", protocol), PARAMS.blur, out)
    return out


def blurry_input_outputs(folder: Path) -> None:
    """Outputs by hand: each input as its deblurred frame, the rounded mean of two inputs as interpolation."""
    for clip in sorted(p for p in folder.iterdir() if p.is_dir()):
        inputs = [read_png(p).astype(np.uint16) for p in sorted(clip.glob("input_*.png"))]
        for k, frame in enumerate(inputs):
            write_png(clip / f"deblur_{k:05d}.png", frame.astype(np.uint8))
        for k in range(len(inputs) - 1):
            write_png(clip / f"interp_{k:05d}.png", ((inputs[k] + inputs[k + 1] + 1) // 2).astype(np.uint8))


def score(root: Path, folder: Path, protocol: str, lpips: Lpips) -> tuple[pd.DataFrame, dict]:
    summary = {"method": "mine", "dataset": "synth", "protocol": protocol}
    scored = evaluate_folder(folder, "synth", protocol, CFG, lpips, summary, root)
    return scored.frames, summary


def test_export_writes_the_inputs_protocol_json_and_a_readme(root, tmp_path):
    out = exported(root, "mixed", tmp_path / "export")
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "a", "b", PROTOCOL_FILE]
    assert sorted(p.name for p in (out / "a").iterdir()) == ["input_00000.png", "input_00001.png", "input_00002.png"]
    prepared = prepared_dir("synth", "mixed", root)
    assert (out / "b/input_00001.png").read_bytes() == (prepared / "b/input_00001.png").read_bytes()
    protocol = json.loads((out / PROTOCOL_FILE).read_text())
    assert protocol["dataset"] == "synth" and protocol["protocol"] == "mixed"
    assert protocol["frame_rates"] == {"source": 240, "input": 30.0, "output": 60.0}
    assert protocol["blur"]["window"] == 11 and protocol["blur"]["p_blur"] == 0.5
    assert protocol["clips"][0] == {"name": "a", "inputs": 3, "deblur": 3, "interp": 2, "height": 32, "width": 48}
    assert protocol["files"]["interp"] == "interp_{k:05d}.png"
    assert "blurry\": 1" not in (out / PROTOCOL_FILE).read_text() and "manifest" not in str(list(out.rglob("*")))
    assert "python -m stages.score" in (out / "README.txt").read_text()
    again = exported(root, "mixed", tmp_path / "again")  # deterministic: the same inputs, the same hash
    assert (again / PROTOCOL_FILE).read_bytes() == (out / PROTOCOL_FILE).read_bytes()
    assert json.loads((exported(root, "all_blurry", tmp_path / "ab") / PROTOCOL_FILE).read_text())[
        "inputs_sha256"] != protocol["inputs_sha256"]
    with pytest.raises(UserError, match="already exists and is not empty"):
        exported(root, "mixed", out)


def test_copied_inputs_score_exactly_like_blurry_input(root, tmp_path, lpips):
    folder = exported(root, "mixed", tmp_path / "bin")  # outputs written beside the inputs
    blurry_input_outputs(folder)
    frames, summary = score(root, folder, "mixed", lpips)
    clips = list(iter_test_clips(prepared_dir("synth", "mixed", root), root))
    reference = evaluate_clips(build_model(get_method("blurry_input"), PARAMS), clips, lpips, batch=2).frames
    deblur = frames[frames.kind == "deblur"].reset_index(drop=True)
    pd.testing.assert_frame_equal(deblur, reference[reference.kind == "deblur"].reset_index(drop=True))
    assert np.isinf(deblur.psnr[deblur.input_blurry == 0]).all()  # the sharp inputs of `mixed`
    interp = frames[frames.kind == "interp"]
    assert (interp.psnr - reference[reference.kind == "interp"].psnr.to_numpy()).abs().max() < 0.05
    assert summary["outputs_supplied"]["path"] == str(folder) and len(summary["outputs_supplied"]["sha256"]) == 64
    assert summary["frames"] == {"deblur": 6, "interp": 4, "joint": 10, "pooled": 10}
    table = summary_table(summary, "per_clip_mse")  # mixed's headline: its tables and page agree
    assert table.splitlines()[2].startswith("deblur        6  ") and "outputs supplied" in table
    joint = {c: f"{summary['averages'][c]['joint']['psnr']['mean']:.2f}" for c in ("per_clip", "per_clip_mse")}
    assert joint["per_clip"] != joint["per_clip_mse"]  # sharp inputs returned exactly: capped under per_clip
    assert "per_clip_mse means" in table and table.splitlines()[4].split()[2] == joint["per_clip_mse"]


def test_the_stand_in_of_the_docs_runs_and_scores_its_deblur_like_blurry_input(root, tmp_path, lpips):
    """docs/outside-results.md's few lines of an outside method, run as printed on an export."""
    page = (Path(__file__).resolve().parent.parent / "docs/outside-results.md").read_text()
    code = next(b for b in page.split("```python\n")[1:] if "for clip in sorted" in b).split("```")[0]
    inputs, outputs = exported(root, "mixed", tmp_path / "export"), tmp_path / "mine"
    exec(compile(code, "docs/outside-results.md", "exec"), {"inputs": inputs, "outputs": outputs, "np": np,
                                                             "Image": Image, "shutil": shutil})
    frames, _ = score(root, outputs, "mixed", lpips)
    clips = list(iter_test_clips(prepared_dir("synth", "mixed", root), root))
    reference = evaluate_clips(build_model(get_method("blurry_input"), PARAMS), clips, lpips, batch=2).frames
    pd.testing.assert_frame_equal(frames[frames.kind == "deblur"].reset_index(drop=True),
                                  reference[reference.kind == "deblur"].reset_index(drop=True))


class Invert(torch.nn.Module):
    """A method that changes every frame: deblur = 1 - input, interp = 0.3 a + 0.7 b."""

    window = 3

    def forward(self, frames):
        return 1 - frames, 0.3 * frames[:, :-1] + 0.7 * frames[:, 1:]


def test_outputs_of_a_method_score_as_its_own_evaluation(root, tmp_path, lpips):
    protocol_dir = prepared_dir("synth", "all_blurry", root)
    clips = list(iter_test_clips(protocol_dir, root))
    folder = tmp_path / "invert"
    for out in model_outputs(ClipRunner(Invert(), batch=2), clips):
        for kind, k, frame in out.frames:
            write_png(folder / out.clip.name / f"{kind}_{k:05d}.png", frame)
    shutil.copy(exported(root, "all_blurry", tmp_path / "export") / PROTOCOL_FILE, folder)
    frames, summary = score(root, folder, "all_blurry", lpips)
    own = evaluate_clips(Invert(), clips, lpips, batch=2).frames
    pd.testing.assert_frame_equal(frames, own)
    expected = summarize(own, CFG.psnr_cap, CFG.bootstrap, CFG.confidence, CFG.seed)
    assert {k: summary[k] for k in expected} == expected
    assert summary["averages"]["per_clip"]["deblur"]["psnr"]["mean"] < 10  # really not the input


def _rewrite(path: Path, image: Image.Image) -> None:
    image.save(path, format="PNG")


BAD = {
    "missing": (lambda f: [(f / c / n).unlink() for c, n in (("a", "deblur_00001.png"), ("b", "interp_00000.png"),
                                                              ("b", "deblur_00002.png"))],
                r"3 of 10 output frames are missing: a/deblur_00001.png, b/deblur_00002.png, b/interp_00000.png;"),
    "wrong size": (lambda f: _rewrite(f / "b/interp_00001.png", Image.new("RGB", (40, 32))),
                   r"b/interp_00001.png: 40x32 pixels, but the inputs of clip b are 48x32"),
    "alpha": (lambda f: _rewrite(f / "a/deblur_00000.png", Image.new("RGBA", (48, 32))),
              r"a/deblur_00000.png: an 8-bit RGBA PNG \(4 channel\(s\)\); write an 8-bit RGB PNG"),
    "grey": (lambda f: _rewrite(f / "a/deblur_00000.png", Image.new("L", (48, 32))),
             r"a/deblur_00000.png: an 8-bit greyscale PNG \(1 channel\(s\)\)"),
    # PIL opens this one as 8-bit "RGB": only the PNG header tells
    "16-bit RGB": (lambda f: cv2.imwrite(str(f / "a/interp_00001.png"), np.full((32, 48, 3), 40000, np.uint16)),
                   r"a/interp_00001.png: a 16-bit RGB PNG \(3 channel\(s\)\); write an 8-bit RGB PNG"),
    "16-bit grey": (lambda f: _rewrite(f / "b/deblur_00001.png", Image.fromarray(np.zeros((32, 48), np.uint16))),
                    r"b/deblur_00001.png: a 16-bit greyscale PNG \(1 channel\(s\)\)"),
    "a JPEG named .png": (lambda f: Image.new("RGB", (48, 32)).save(f / "a/deblur_00002.png", format="JPEG"),
                          r"a/deblur_00002.png: a JPEG image, not a PNG"),
    "JPEGs": (lambda f: [Image.open(p).convert("RGB").save(p.with_suffix(".jpg")) or p.unlink()
                         for p in (f / "a").glob("deblur_*.png")],
              r"3 image file\(s\) that are not expected outputs: a/deblur_00000.jpg \(a .jpg file: only PNG is "
              r"scored\), a/deblur_00001.jpg"),
    "a frame past the last input": (
        lambda f: shutil.copy(f / "a/interp_00001.png", f / "a/interp_00002.png"),
        r"1 image file\(s\) that are not expected outputs: a/interp_00002.png \(clip a has interp_00000 to "
        r"interp_00001\); they signal a misaligned submission"),
    "an unknown clip": (lambda f: shutil.copytree(f / "a", f / "999_bogus"),
                        r"unknown clip folder\(s\) 999_bogus/ \(the inputs of synth/all_blurry are clips a, b\)"),
    "a frame outside any clip": (lambda f: shutil.copy(f / "a/interp_00001.png", f / "interp_00001.png"),
                                 r"interp_00001.png \(outside any clip folder\)"),
    "a file, not a folder": (lambda f: None, r"protocol.json: a file, not a folder; pass the folder that holds"),
    "not a png": (lambda f: (f / "a/interp_00000.png").write_bytes(b"not a png"),
                  r"a/interp_00000.png: cannot read this PNG"),
    "broken after its header": (lambda f: (f / "b/deblur_00000.png").write_bytes(
        (f / "b/deblur_00000.png").read_bytes()[:120]), r"b/deblur_00000.png: cannot read this PNG"),
    # only regular files inside the submission are read: a link, to anywhere, is refused by name
    "a symlinked clip folder": (lambda f: (shutil.move(f / "a", f.parent / "elsewhere"),
                                           (f / "a").symlink_to(f.parent / "elsewhere")),
                                r"1 symbolic link\(s\): a/; the scorer reads only regular files inside the "
                                r"outputs folder"),
    "a symlinked frame": (lambda f: (shutil.move(f / "b/interp_00000.png", f.parent / "frame.png"),
                                     (f / "b/interp_00000.png").symlink_to(f.parent / "frame.png")),
                          r"1 symbolic link\(s\): b/interp_00000.png; the scorer reads only regular files"),
    "a symlinked frame inside the folder": (
        lambda f: ((f / "a/deblur_00001.png").unlink(), (f / "a/deblur_00001.png").symlink_to("deblur_00000.png")),
        r"1 symbolic link\(s\): a/deblur_00001.png;"),
    "a symlinked protocol.json": (lambda f: (shutil.move(f / PROTOCOL_FILE, f.parent / "p.json"),
                                             (f / PROTOCOL_FILE).symlink_to(f.parent / "p.json")),
                                  r"symbolic link\(s\): protocol.json;"),
    "a FIFO for a frame": (lambda f: ((f / "a/interp_00000.png").unlink(), os.mkfifo(f / "a/interp_00000.png")),
                           r"1 entry\(ies\) that are neither folders nor regular files: a/interp_00000.png;"),
    "no protocol.json": (lambda f: (f / PROTOCOL_FILE).unlink(), r"protocol.json: missing; copy the protocol.json"),
    "made for another protocol": (
        lambda f: shutil.copy(f.parent / "mixed" / PROTOCOL_FILE, f),
        r"these outputs were made for synth/mixed \(its protocol.json\), not synth/all_blurry"),
    "made from other inputs": (
        lambda f: (f / PROTOCOL_FILE).write_text(json.dumps(
            {**json.loads((f / PROTOCOL_FILE).read_text()), "inputs_sha256": "0" * 64})),
        r"made from other inputs than synth/all_blurry holds now \(protocol.json: inputs_sha256 000000000000…"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_folder_is_refused_naming_the_file(root, tmp_path, lpips, case):
    exported(root, "mixed", tmp_path / "mixed")
    folder = exported(root, "all_blurry", tmp_path / "outputs")
    blurry_input_outputs(folder)
    damage, message = BAD[case]
    damage(folder)
    with pytest.raises(UserError, match=message):
        score(root, folder / PROTOCOL_FILE if case == "a file, not a folder" else folder, "all_blurry", lpips)


def test_stray_files_that_are_not_images_are_only_warned_about(root, tmp_path, lpips, caplog):
    folder = exported(root, "all_blurry", tmp_path / "outputs")
    blurry_input_outputs(folder)
    (folder / "notes.txt").write_text("how I made these\n")
    (folder / "a/Thumbs.db").write_bytes(b"\0" * 16)
    frames, summary = score(root, folder, "all_blurry", lpips)
    assert len(frames) == 10 and summary["frames"]["joint"] == 10
    assert "ignored, not outputs: a/Thumbs.db, notes.txt" in caplog.text


def test_the_export_says_how_floats_are_rounded_and_np_round_matches(root, tmp_path):
    protocol = json.loads((exported(root, "mixed", tmp_path / "export") / PROTOCOL_FILE).read_text())
    assert "np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)" in protocol["files"]["rounding"]
    halves = (np.arange(-3, 258) + 0.5) / 255  # ties, where rounding conventions differ
    x = np.concatenate([np.linspace(-0.1, 1.1, 10001), halves]).astype(np.float32)
    ours = to_uint8(torch.from_numpy(x).expand(3, 1, -1))[0, :, 0]  # (3, 1, N) -> (1, N, 3)
    np.testing.assert_array_equal(ours, np.round(np.clip(x, 0, 1) * 255).astype(np.uint8))


# --------------------------------------------------------------------------------------------
# In the pipeline: a tiny repository, the folder as a DVC dependency.


@pytest.mark.pipeline
@pytest.mark.usefixtures("no_mlflow")  # reads no MLflow run
def test_dvc_scores_a_folder_and_reruns_only_its_evaluation_when_an_output_changes(prepared_repo, tmp_path):
    params = tiny_params()
    params["evaluate"]["folders"] = {"bin-synth-all_blurry": {
        "method": "bin", "dataset": "synth", "protocol": "all_blurry", "path": "submissions/bin"}}
    repo = repo_from(prepared_repo, tmp_path / "repo", params)
    dvc = [sys.executable, "-m", "dvc"]
    run([*dvc, "repro", "blur@synth", "weights"], repo)  # (check_params alone: the data are made)
    run([sys.executable, "-m", "stages.export_inputs", "--dataset", "synth", "--protocol", "all_blurry",
         "--out", "submissions/bin"], repo)
    blurry_input_outputs(repo / "submissions/bin")
    targets = ["evaluate@blurry_input-synth-all_blurry", "evaluate_folder@bin-synth-all_blurry"]
    out = run([*dvc, "repro", *targets], repo).stdout
    assert {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")} == set(targets)
    results = repo / "results/synth/all_blurry"
    summary = json.loads((results / "bin/summary.json").read_text())
    assert summary["status"] == "ok" and summary["outputs_supplied"]["path"] == "submissions/bin"
    ours, theirs = (pd.read_csv(results / m / "frames.csv") for m in ("bin", "blurry_input"))
    assert list(ours.columns) == COLUMNS
    pd.testing.assert_frame_equal(ours[ours.kind == "deblur"], theirs[theirs.kind == "deblur"])

    clip = sorted((repo / "submissions/bin").glob("*/deblur_00001.png"))[0]
    write_png(clip, 255 - read_png(clip))
    status = json.loads(run([*dvc, "status", "--json", *targets], repo).stdout)
    assert set(status) == {targets[1]}
    out = run([*dvc, "repro", *targets], repo).stdout
    assert [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")] == [targets[1]]
    changed = json.loads((results / "bin/summary.json").read_text())
    assert changed["outputs_supplied"]["sha256"] != summary["outputs_supplied"]["sha256"]
    assert changed["averages"]["per_clip"]["deblur"]["psnr"]["mean"] < summary["averages"]["per_clip"]["deblur"]["psnr"]["mean"]

    # the quick path without DVC: a bad folder prints one line, exits 1 and writes nothing
    shutil.copytree(repo / "submissions/bin", repo / "submissions/bad")
    (repo / "submissions/bad" / clip.parent.name / "interp_00000.png").unlink()
    result = run([sys.executable, "-m", "stages.score", "submissions/bad", "--dataset", "synth", "--protocol",
                  "all_blurry"], repo, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: submissions/bad: 1 of 10 output frames are missing: {clip.parent.name}/interp_00000.png" in result.stderr
    assert not (results / "bad").exists() and not (repo / "outside").exists()
    # a good folder scored by hand lands in outside/ (git-ignored), not in results/ (the pipeline's)
    score_cmd = [sys.executable, "-m", "stages.score", "submissions/bin", "--dataset", "synth", "--protocol",
                 "all_blurry", "--method", "mine"]
    printed = run(score_cmd, repo).stdout
    assert printed.startswith("mine on synth/all_blurry: 2 clips; per_clip means")  # all_blurry's headline
    assert json.loads((repo / "outside/synth/all_blurry/mine/summary.json").read_text())["status"] == "ok"
    assert not (results / "mine").exists()
    assert run(["git", "status", "--porcelain", "--untracked-files=all"], repo).stdout.count("outside/") == 0
    result = run([*score_cmd[:3], "submissions/bin/protocol.json", *score_cmd[4:]], repo, check=False)
    assert "error: submissions/bin/protocol.json: a file, not a folder" in result.stderr
    result = run([*score_cmd[:-1], "bin"], repo, check=False)
    assert result.returncode == 1 and "'bin' is scored by the pipeline (evaluate.folders)" in result.stderr
    result = run([sys.executable, "-m", "stages.score", "submissions/bad", "--dataset", "synth", "--protocol",
                  "all_blurry", "--method", "blurry_input"], repo, check=False)
    assert result.returncode == 1 and "'blurry_input' is a method of this repository" in result.stderr
