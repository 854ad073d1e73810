"""`dvc plots show` without internet: DVC's own page loads Vega from a CDN and stays blank; the page
made with alabench.vega's template draws every plot in headless Chromium with the network blocked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cdp import Browser
from conftest import run

from alabench.sdist import sha256_file
from alabench.vega import SCRIPTS, WHEEL, fetch_wheel, scripts, write_template

DVC = [sys.executable, "-m", "dvc"]
# The plots the pipeline declares (dvc.yaml): a training curve and the report's joint PSNR bars.
PLOTS = """plots:
  - training/synth/alanet/seed0/history.csv:
      x: epoch
      y: joint_psnr
  - reports/joint.csv:
      template: bar_horizontal
      x: psnr
      y: run
"""
COUNT = "document.querySelectorAll('.vega-embed svg.marks, .vega-embed canvas.marks').length"


@pytest.fixture
def browser(tmp_path):
    page = Browser(tmp_path / "profile")
    page.send("Network.enable", session=page.session)
    page.send("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]}, page.session)  # offline
    yield page
    page.close()


def plots_repo(root: Path) -> Path:
    history = root / "training/synth/alanet/seed0/history.csv"
    history.parent.mkdir(parents=True)
    history.write_text("epoch,step,lr,train_loss,joint_psnr\n1,10,0.001,0.2,25.0\n2,20,0.001,0.1,27.0\n")
    (root / "reports").mkdir()
    (root / "reports/joint.csv").write_text("run,dataset,protocol,method,lpips,psnr,ssim\n"
                                            "alanet (all_blurry; synth),synth,all_blurry,alanet,0.2,30.1,0.9\n"
                                            "unet (all_blurry; synth),synth,all_blurry,unet,0.2,29.9,0.9\n")
    (root / "dvc.yaml").write_text(PLOTS)
    run(["git", "init", "-q"], root)
    run([*DVC, "init", "-q"], root)
    return root


@pytest.mark.pipeline
def test_plots_render_offline_with_the_inline_template_and_not_without(tmp_path, browser):
    repo = plots_repo(tmp_path / "repo")
    template = write_template(repo / "reports" / "vega-template.html")
    assert "cdn.jsdelivr" not in template.read_text() and "{plot_divs}" in template.read_text()
    run([*DVC, "plots", "show", "-o", "cdn"], repo)
    browser.open((repo / "cdn" / "index.html").as_uri())
    assert browser.js(COUNT) == 0 and browser.errors  # DVC's own page: vegaEmbed never arrives
    browser.events.clear()
    run([*DVC, "plots", "show", "--html-template", str(template), "-o", "offline"], repo)
    page = (repo / "offline" / "index.html").read_text()
    assert "<script src=" not in page and page.count("<script>/* vega") == 3  # nothing to fetch
    browser.open((repo / "offline" / "index.html").as_uri())
    assert browser.wait_for(f"{COUNT} === 2", timeout=30)
    texts = browser.js("[...document.querySelectorAll('.vega-embed svg.marks text')].map(t => t.textContent).join(' ')")
    assert "joint_psnr" in texts and "alanet (all_blurry; synth)" in texts
    assert not browser.errors, browser.errors
    shots = Path("/work/shots")
    if shots.is_dir():  # a picture for the note when run on the project's machine
        browser.screenshot(shots / "dvc-plots-offline.png")


def test_a_damaged_cached_script_is_extracted_again_from_the_pinned_wheel(tmp_path):
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / WHEEL).symlink_to(fetch_wheel())  # the machine's cached wheel: no network
    paths = scripts(cache=tmp_path)
    assert sorted(p.name for p in paths.values()) == sorted(SCRIPTS)
    paths["vega@6.1.2.js"].write_text("half a download")
    again = scripts(cache=tmp_path)
    assert sha256_file(again["vega@6.1.2.js"]) == SCRIPTS["vega@6.1.2.js"][1]
