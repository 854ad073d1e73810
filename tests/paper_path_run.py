"""The paper's path run for real, offline (`make test-paper`; .ci/run runs it after `make test`: it takes
minutes, too long for `make test`'s budget, so its name keeps it out of the default collection).

params.paper.yaml merged over params.yaml with the values `make repro PROFILE=paper` sets, then only the overrides issue 24
allows: the Adobe240 URL and the YouTube240 candidates pointed at a server on 127.0.0.1 (a small
Adobe240-shaped zip with the 8 standard test names and three train videos; two 240 fps videos, one in
sources.csv and one found by the "search"), tiny epochs and widths, and frames, clips and seeds shrunk
(48x32 frames, crop = frame height as in the profile, one seed, 50 bootstrap resamples). Every method
the profile lists trains and is evaluated. One `dvc repro` goes through fetch, blur, train on adobe240,
evaluate on adobe240 and youtube240 under both protocols, and report."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import pytest

from alabench.sources.adobe240 import read_list
from alabench.vocabulary import PROTOCOLS
from conftest import REPO, run
from footage import encode, shot
from httpserver import serve
from test_paper_path import ABLATION, paper_params, paper_project
from test_youtube240 import SMOOTH, feed

TEST_NAMES = read_list(REPO / "sources/adobe240/test.txt")
TRAIN_NAMES = ["IMG_0001.mov", "IMG_0002.mov", "IMG_0003.mov"]
PREFIX = "DeepVideoDeblurring_Dataset_Original_High_FPS_Videos/original_high_fps_videos/"
ZIP = "/DeepVideoDeblurring_Dataset_Original_High_FPS_Videos.zip"
YOUTUBE = ["listed.mp4", "slowmo_240fps.mp4"]  # the first in sources.csv, the second found by the "search"


def overrides(url: str, feed_url: str) -> dict:
    """The only departures from the profile: where the footage comes from, and sizes that keep it fast."""
    tiny_unet = {"width": 0.0625, "reduction": 4}
    return {
        "adobe240": {"url": url},
        "youtube240": {"search": [feed_url], "min_height": 36},  # the served videos are 64x36
        "network": {"retries": 0, "backoff_s": 0.0, "timeout_s": 10.0},
        "video": {"width": 48, "height": 32, "workers": 2},  # frame size: 640x352 -> 48x32
        "synth": {"width": 48, "height": 32, "train": {"clips": 4, "frames": 30}, "test": {"clips": 2, "frames": 27},
                  "workers": 1},  # the synth stage always runs (dvc.yaml): kept tiny
        "train_data": {"crop": 32, "val_clips": 1, "val_windows_per_clip": 2},  # crop = frame height, as the profile
        "train": {"epochs": 1, "seeds": [0], "checkpoint_every": 2, "threads": 1},
        "evaluate": {"bootstrap": 50, "samples": 1, "threads": 1},
        "methods": {**{m: tiny_unet for m in ("alanet", "alanet_self", "alanet_cross", "unet")},
                    "superslomo": {"width": 0.0625}, "cain": {"features": 8, "groups": 1, "blocks": 1, "reduction": 2},
                    "bin": {"window": 3}, "jin": {"window": 3}},  # the profile's 6 (BIN) and 4 (Jin) inputs span
                                                                  # 51 and 35 frames; the served videos have 30
    }


def adobe240_zip(work: Path) -> bytes:
    """The 8 standard test videos and three train videos, 30 frames of 64x36 at 240 fps each."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for i, name in enumerate([*TEST_NAMES, *TRAIN_NAMES]):
            split = "test" if name in TEST_NAMES else "train"
            archive.writestr(PREFIX + name, encode(work / f"{i}.mp4", shot(i, 30, split=split), 240).read_bytes())
    return buf.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def paper_repo(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("paper")
    with serve() as server:
        url = server.add(ZIP, adobe240_zip(tmp / "adobe"))
        for i, name in enumerate(YOUTUBE):
            server.add(f"/{name}", encode(tmp / "yt" / name, shot(20 + i, 40, SMOOTH), 240).read_bytes(), "video/mp4")
        feed_url = server.add("/results.rss", feed(server.base, YOUTUBE[1:]), "application/rss+xml")
        repo = paper_project(tmp / "repo", overrides(url, feed_url))
        (repo / "sources/youtube240/sources.csv").write_text(f"url,capture_fps,note\n{server.url('/listed.mp4')},240,\n")
        run(["git", "commit", "-qam", "served candidates"], repo)
        result = run([sys.executable, "-m", "dvc", "repro"], repo)
        (repo / "repro.log").write_text(result.stdout + result.stderr)
    return repo


def test_paper_path_runs_end_to_end(paper_repo):
    log = (paper_repo / "repro.log").read_text()
    methods = paper_params()["train"]["methods"]
    stages = ["fetch@adobe240", "fetch@youtube240", "blur@adobe240", "blur@youtube240", "report",
              *(f"train@{m}-adobe240-0" for m in methods)]
    for stage in stages:
        assert f"Running stage '{stage}'" in log, stage
    assert "Running stage 'blur@synth'" not in log
    for dataset, clips in (("adobe240", len(TEST_NAMES)), ("youtube240", len(YOUTUBE))):
        assert len(list((paper_repo / f"data/sharp/{dataset}/test").iterdir())) == clips, dataset
    assert len(list((paper_repo / "data/sharp/adobe240/train").iterdir())) == len(TRAIN_NAMES)
    evaluated = [(d, m) for d in ("adobe240", "youtube240") for m in [*methods, *paper_params()["evaluate"]["methods"]]]
    for protocol in PROTOCOLS:
        for dataset, method in evaluated:
            summary = paper_repo / f"results/{dataset}/{protocol}/{method}/summary.json"
            assert '"status": "ok"' in summary.read_text(), summary
    transferred = json.loads((paper_repo / "results/youtube240/mixed/alanet/summary.json").read_text())
    assert transferred["trained_on"] == "adobe240" and transferred["checkpoints"] == [
        "checkpoints/adobe240/alanet/seed0/model.pt"]  # YouTube240 is scored with the Adobe240 models


def test_report_shows_both_datasets_beside_the_dagger_rows(paper_repo):
    rows = read_csv(paper_repo / "reports/table2.csv")
    assert {r["dataset"] for r in rows if r["source"] == "paper"} == {"adobe240", "youtube240"}  # the † rows
    for protocol in PROTOCOLS:
        measured = {(r["dataset"], r["method"]) for r in rows if r["source"] == "measured" and r["protocol"] == protocol}
        assert {("adobe240", "blurry_input"), ("youtube240", "blurry_input")} | {(d, m) for m in ABLATION
                                                                                for d in ("adobe240", "youtube240")} \
            <= measured, protocol
    assert "synth" not in {r["dataset"] for r in rows}
    page = (paper_repo / "reports/index.html").read_text()
    for protocol in PROTOCOLS:
        start = page.index(f'<section class="protocol" id="table2-{protocol}">')
        section = page[start:page.index("</section>", start)]
        assert re.search(r"<th[^>]*>adobe240</th>", section) and re.search(r"<th[^>]*>youtube240</th>", section)
        assert 'class="dagger"' in section and "ALANET (Ours) †" in section, protocol  # beside the measured rows
        assert f'id="table3-{protocol}"' in page
    assert "none of the data sets shown" not in page  # the † rows found their data sets
    table3 = read_csv(paper_repo / "reports/table3.csv")
    assert {r["method"] for r in table3 if r["source"] == "measured" and r["dataset"] == "adobe240"} == set(ABLATION)
    assert {r["dataset"] for r in table3 if r["source"] == "paper"} == {"adobe240"}
