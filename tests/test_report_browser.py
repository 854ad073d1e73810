"""The report in real headless Chromium (DevTools protocol over a pipe): it fits a laptop screen, the viewer's
controls change what is shown, and partial results render without a console error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cdp import Browser
from test_report import METHODS, PARAMS, write_fixture

from alabench.config import ReportParams
from alabench.layout import Expected
from alabench.report import build_report, write_report


@pytest.fixture
def browser(tmp_path):
    page = Browser(tmp_path / "profile", width=1366, height=900)
    yield page
    page.close()


def rendered(root: Path, params: ReportParams = PARAMS, expected: list[Expected] = ()) -> str:
    write_report(build_report(root, params, list(expected)), root / "reports")
    return (root / "reports" / "index.html").as_uri()


NO_OVERFLOW = """(() => {
  const width = document.documentElement.clientWidth;
  const tables = [...document.querySelectorAll("table.headline")];
  return tables.length > 0 && document.documentElement.scrollWidth <= width
         && tables.every(t => t.getBoundingClientRect().right <= width) ? tables.length : 0;
})()"""


def test_the_headline_fits_1366_px_and_the_viewer_controls_work(tmp_path, browser):
    write_fixture(tmp_path)
    browser.open(rendered(tmp_path))
    assert browser.js(NO_OVERFLOW) == 2  # one headline table per protocol (one data set)
    assert browser.js("document.querySelector('details.more table.results') !== null")  # the rest: one click away
    base = "document.querySelector('#panel-a img.base')"
    browser.js("document.getElementById('v-a').value = 'alanet'; document.getElementById('v-a').dispatchEvent(new Event('change'))")
    first = browser.wait_for(f"{base}.complete && {base}.naturalWidth > 0 && {base}.getAttribute('src')")
    assert first == "assets/viewer/synth/all_blurry/c0/alanet/deblur_00000.png"
    browser.js("document.getElementById('v-a').value = 'blurry_input'; document.getElementById('v-a').dispatchEvent(new Event('change'))")
    second = browser.wait_for(f"{base}.complete && {base}.naturalWidth > 0 && {base}.getAttribute('src')")
    assert second != first and "/blurry_input/" in second  # switching the method changes the image
    # play: the frame position advances on its own, through the 60 fps sequence
    assert browser.js("document.getElementById('v-pos').value") == "0"
    browser.js("document.getElementById('v-speed').value = '0.0625'; document.getElementById('v-play').click()")
    browser.wait_for("document.getElementById('v-pos').value !== '0'")
    assert "frame" in browser.js("document.getElementById('v-label').textContent")
    browser.js("document.getElementById('v-play').click()")  # pause
    # residue: the GT is blended over the output by difference
    browser.js("document.getElementById('v-residue').click()")
    assert browser.js("document.getElementById('panel-a').classList.contains('residue')")
    assert browser.js("!document.querySelector('#panel-a img.over').hidden && "
                      "document.querySelector('#panel-a img.over').getAttribute('src').includes('/gt_')")
    # wipe and a synchronised zoom
    browser.js("const w = document.getElementById('v-wipe'); w.value = 20; w.dispatchEvent(new Event('input'))")
    assert browser.js("document.querySelector('#panel-wipe img.over').style.clipPath") == "inset(0px 0px 0px 20%)"
    browser.js("""const f = document.querySelector('#panel-gt .frame'), r = f.getBoundingClientRect();
                  f.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, clientX: r.left + 10, clientY: r.top + 10,
                                                           bubbles: true, cancelable: true}))""")
    scales = browser.js("[...document.querySelectorAll('#viewer .stage')].map(s => s.style.transform)")
    assert len(set(scales)) == 1 and "scale(1.25)" in scales[0]
    assert browser.errors == []
    size = (tmp_path / "reports" / "index.html").stat().st_size
    assert size < 1_500_000 and "data:image" not in (tmp_path / "reports" / "index.html").read_text()


def test_partial_results_over_two_data_sets_render_without_errors(tmp_path, browser):
    """blurry_input has results on a second data set, nothing else does: cells say "not run" and how."""
    write_fixture(tmp_path)
    write_fixture(tmp_path / "other", {"blurry_input": METHODS["blurry_input"]}, ("all_blurry",))
    (tmp_path / "results" / "local").mkdir()
    (tmp_path / "other" / "results" / "synth").rename(tmp_path / "results" / "local" / "all_blurry-tmp")
    (tmp_path / "results" / "local" / "all_blurry-tmp" / "all_blurry").rename(tmp_path / "results" / "local" / "all_blurry")
    for summary in (tmp_path / "results" / "local").glob("*/*/summary.json"):
        summary.write_text(json.dumps({**json.loads(summary.read_text()), "dataset": "local"}))
    params = ReportParams(**{**PARAMS.__dict__, "datasets": ("synth", "local")})
    expected = [Expected("local", p, m, f"evaluate_trained@{m}-local-{p}", (0,))
                for p in ("all_blurry", "mixed") for m in ("alanet", "alanet_self")]
    url = rendered(tmp_path, params, expected)
    page = (tmp_path / "reports" / "index.html").read_text()
    assert "not run — <code>dvc repro evaluate_trained@alanet-local-all_blurry</code>" in page
    assert "alanet_self on local / mixed: not run — dvc repro evaluate_trained@alanet_self-local-mixed" in page
    browser.open(url)
    assert browser.js(NO_OVERFLOW) == 4  # two data sets x two protocols, none overflowing at 1366 px
    assert browser.errors == []
