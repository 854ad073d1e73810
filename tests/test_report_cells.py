"""Every cell of the report's Tables 2 and 3, read back from the built page, against its source.

The page (reports/index.html) is parsed with html.parser, each table expanded to a grid through its
header's row and column spans, so a cell is found by its column heading (task, data set, metric) and its
row's method, never by position. Sources: each result's summary.json (the numbers and intervals), the
tasks each method states (which methods may be best in a column), and the paper's published tables
kept in alabench/paper.py (the † rows).

The fixture is test_report.py's, with one more method: `interp_only` addresses interpolation only and
scores above every other method in every column, so a best mark that ignores the tasks lands on it. The
same results are shown for synth and for adobe240, the latter being a data set the paper published, so
that the † rows sit inside the measured tables.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import METHODS, PARAMS, UNITS, write_fixture

from alabench import paper
from alabench.report import build_report, write_report

DATASETS = ("synth", "adobe240")
CELL_PARAMS = replace(PARAMS, datasets=DATASETS)
NEEDS = {"deblur": {"deblur"}, "interp": {"interpolate"}, "joint": {"deblur", "interpolate"}}
DIGITS = {"psnr": 2, "ssim": 4, "lpips": 4}
KIND = {"Deblurring": "deblur", "Interpolation": "interp", "Joint deblurring and interpolation": "joint"}
METRIC = {"PSNR": "psnr", "SSIM": "ssim", "LPIPS": "lpips"}
LOWER_IS_BETTER = {"lpips"}


class Tables(HTMLParser):
    """Every <table> of a page: its caption, the id of the <section> it is in, its header rows and its
    body rows (each row's cells as (tag, class, text)), grouped by the class of their <tbody>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self.sections: list[str] = []
        self.stack: list[str] = []
        self.table: dict | None = None
        self.part, self.row, self.cell = "", None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id") or "")
        elif tag == "table":
            self.table = {"section": next((s for s in reversed(self.sections) if s), ""), "caption": "",
                          "class": attrs.get("class", ""), "head": [], "body": {}}
            self.tables.append(self.table)
        elif self.table is None:
            return
        elif tag == "caption":
            self.cell = {"tag": "caption", "text": ""}
        elif tag in ("thead", "tbody"):
            self.part = "head" if tag == "thead" else attrs.get("class", "")
        elif tag == "tr":
            self.row = {"class": attrs.get("class", ""), "cells": []}
        elif tag in ("td", "th") and self.row is not None:
            self.cell = {"tag": tag, "class": attrs.get("class", ""), "text": "", "nested": 0,
                         "rowspan": int(attrs.get("rowspan", 1)), "colspan": int(attrs.get("colspan", 1))}
        elif self.cell is not None and tag in ("span", "sup", "br"):
            if tag == "sup":
                self.cell["text"] += "^"  # the ≈ mark, kept apart from the number
            if tag == "span":
                self.cell["nested"] += 1

    def handle_endtag(self, tag):
        if tag == "section" and self.sections:
            self.sections.pop()
        elif self.table is None:
            return
        elif tag == "caption" and self.cell:
            self.table["caption"] = self.cell["text"].strip()
            self.cell = None
        elif tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.cell["text"] = " ".join(self.cell["text"].split())
            self.row["cells"].append(self.cell)
            self.cell = None
        elif tag == "span" and self.cell is not None:
            self.cell["nested"] -= 1
        elif tag == "tr" and self.row is not None:
            rows = self.table["head"] if self.part == "head" else self.table["body"].setdefault(self.part, [])
            rows.append(self.row)
            self.row = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.cell is not None and not self.cell.get("nested"):
            self.cell["text"] += data


def columns(table: dict) -> list[tuple[str, ...]]:
    """The heading of every column, top to bottom, with row and column spans expanded."""
    grid: dict[tuple[int, int], str] = {}
    for r, row in enumerate(table["head"]):
        c = 0
        for cell in row["cells"]:
            while (r, c) in grid:
                c += 1
            for dr in range(cell["rowspan"]):
                for dc in range(cell["colspan"]):
                    grid[(r + dr, c + dc)] = cell["text"].rstrip("↑↓")
            c += cell["colspan"]
    width = max(c for _, c in grid) + 1
    return [tuple(dict.fromkeys(grid.get((r, c), "") for r in range(len(table["head"])))) for c in range(width)]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("cells")
    methods = {**METHODS, "interp_only": ([4.0] * 8, False)}  # above alanet's +3 everywhere
    write_fixture(root, methods)
    for protocol in CELL_PARAMS.protocols:
        path = root / "results" / "synth" / protocol / "interp_only" / "summary.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "tasks": ["interpolate"]}))
        shutil.copytree(root / "results" / "synth" / protocol, root / "results" / "adobe240" / protocol)
        for summary in (root / "results" / "adobe240" / protocol).glob("*/summary.json"):
            summary.write_text(json.dumps({**json.loads(summary.read_text()), "dataset": "adobe240"}))
    report = build_report(root, CELL_PARAMS)
    write_report(report, root / "reports")
    parser = Tables()
    parser.feed((root / "reports" / "index.html").read_text())
    return root, parser.tables


def summary(root: Path, dataset: str, protocol: str, method: str) -> dict:
    return json.loads((root / "results" / dataset / protocol / method / "summary.json").read_text())


def fmt(value: float | None, metric: str) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{DIGITS[metric]}f}"


def measured_cells(table: dict, dataset: str | None = None) -> dict[tuple[str, str, str, str], dict]:
    """{(method, kind, dataset, metric): cell} of a table's measured rows (``dataset`` for the compact
    tables, whose columns are task and metric only)."""
    heads = columns(table)
    cells = {}
    for row in table["body"].get("measured", []) + table["body"].get("headline", []):
        method = row["cells"][0]["text"].split(" ")[0]
        for head, cell in zip(heads, row["cells"]):
            if head[0] in KIND:
                key = (head[0], dataset, head[-1]) if dataset else head
                cells[(method, KIND[key[0]], key[1], METRIC[key[2]])] = cell
    return cells


def expected_best(root: Path, protocol: str, methods: list[str], kind: str, dataset: str, metric: str) -> str:
    """The method with the best mean among those whose stated tasks cover the column's task."""
    convention = CELL_PARAMS.headline[protocol]
    scored = {}
    for method in methods:
        s = summary(root, dataset, protocol, method)
        if NEEDS[kind] <= set(s["tasks"]):
            scored[method] = s["averages"][convention][kind][metric]["mean"]
    pick = min if metric in LOWER_IS_BETTER else max
    return pick(scored, key=scored.get)


def check_measured(root: Path, protocol: str, cells: dict, methods: list[str], with_interval: bool) -> int:
    """Every measured cell against summary.json, and exactly one best mark per column, on the right method."""
    convention = CELL_PARAMS.headline[protocol]
    assert cells, "no measured cell found on the page"
    for (method, kind, dataset, metric), cell in cells.items():
        s = summary(root, dataset, protocol, method)
        average = s["averages"][convention][kind][metric]
        text = fmt(average["mean"], metric)
        if with_interval:
            text += f" ± {fmt((average['ci'][1] - average['ci'][0]) / 2, metric)}"
        assert cell["text"].split("^")[0].strip() == text, (protocol, method, kind, dataset, metric)
        addressed = NEEDS[kind] <= set(s["tasks"])
        assert ("unaddressed" in cell["class"].split()) is (not addressed), (method, kind)
    for column in {key[1:] for key in cells}:
        marked = [m for (m, *c), cell in cells.items() if tuple(c) == column and "best" in cell["class"].split()]
        assert marked == [expected_best(root, protocol, methods, *column)], (protocol, column, marked)
    return len(cells)


def test_every_table2_number_and_best_mark_matches_summary_json(page):
    root, tables = page
    methods = [*METHODS, "interp_only"]
    for protocol in CELL_PARAMS.protocols:
        in_section = [t for t in tables if t["section"] == f"table2-{protocol}"]
        full = [t for t in in_section if t["body"].get("measured")]
        compact = [t for t in in_section if "headline" in t["body"]]
        assert len(full) == 1 and len(compact) == len(DATASETS)
        n = check_measured(root, protocol, measured_cells(full[0]), methods, with_interval=True)
        assert n == len(methods) * len(DATASETS) * 3 * 3  # every method, data set, task and metric
        for table in compact:
            dataset = table["caption"].split(" · ")[0]
            cells = measured_cells(table, dataset)
            assert len(cells) == len(methods) * 3 * 2  # joint, deblur, interp x PSNR, SSIM
            check_measured(root, protocol, cells, methods, with_interval=False)
        # the method that addresses interpolation only is best there, never in a column it does not address
        cells = measured_cells(full[0])
        assert "best" in cells[("interp_only", "interp", "synth", "psnr")]["class"]
        assert "best" not in cells[("interp_only", "deblur", "synth", "psnr")]["class"]


def test_every_table3_number_and_best_mark_matches_summary_json(page):
    root, tables = page
    for protocol in CELL_PARAMS.protocols:
        (table,) = [t for t in tables if t["section"] == f"table3-{protocol}" and t["body"].get("measured")]
        cells = measured_cells(table)
        assert {m for m, *_ in cells} == set(CELL_PARAMS.ablation)  # the ablation's methods only
        assert {k for _, k, *_ in cells} == {"deblur", "interp"}
        check_measured(root, protocol, cells, list(CELL_PARAMS.ablation), with_interval=True)


def paper_rows(table: dict) -> dict[str, list[dict]]:
    """{method as printed: its cells} of a table's † rows."""
    rows = {}
    for row in table["body"].get("paper", []):
        if "dagger" in row["class"] and row["cells"][0]["tag"] == "th":
            name = row["cells"][0]["text"]
            assert name.endswith(" †"), name
            rows[name[:-2]] = row["cells"]
    return rows


def check_paper(table: dict, published: tuple[paper.PaperRow, ...], dataset: str | None = None) -> int:
    """Each † row: its source, and every cell the paper's number for that column (– where it has none)."""
    heads = columns(table)
    rows = paper_rows(table)
    assert list(rows) == [row.method for row in published]
    checked = 0
    for row in published:
        cells = rows[row.method]
        assert cells[1]["text"] == row.source
        for head, cell in zip(heads, cells):
            if head[0] in KIND:
                kind, column_dataset, metric = KIND[head[0]], dataset or head[1], METRIC[head[-1]]
                value = row.values.get((kind, column_dataset, metric))
                assert cell["text"] == fmt(value, metric), (row.method, kind, column_dataset, metric)
                checked += value is not None
    return checked


def test_every_dagger_row_is_the_papers_published_number(page):
    _, tables = page
    for protocol in CELL_PARAMS.protocols:
        (t2,) = [t for t in tables if t["section"] == f"table2-{protocol}" and t["body"].get("measured")]
        (t3,) = [t for t in tables if t["section"] == f"table3-{protocol}" and t["body"].get("measured")]
        # adobe240 columns: the paper's Adobe240 numbers; synth and LPIPS columns: none
        assert check_paper(t2, paper.TABLE2) == sum(v is not None for r in paper.TABLE2
                                                    for (k, d, m), v in r.values.items() if d == "adobe240")
        assert check_paper(t3, paper.TABLE3) == 4 * len(paper.TABLE3)
    (published,) = [t for t in tables if t["section"] == "paper"]
    assert check_paper(published, paper.TABLE2) == sum(v is not None for r in paper.TABLE2 for v in r.values.values())


def test_the_papers_tables_are_the_published_numbers():
    """alabench/paper.py against the paper as printed: a few cells transcribed here, and the paper's own
    arithmetic (its joint column is (deblur + interp) / 2 to rounding)."""
    rows = {r.method: r.values for r in paper.TABLE2}
    assert rows["ALANET (Ours)"][("joint", "adobe240", "psnr")] == 33.34
    assert rows["BIN₄ [25]"][("deblur", "youtube240", "ssim")] == 0.9417
    assert rows["Blurry Inputs"][("deblur", "adobe240", "psnr")] == 28.68
    assert rows["DAIN [3]"][("interp", "youtube240", "psnr")] == 35.09
    for method, values in rows.items():
        for dataset in paper.DATASETS:
            d, i, j = (values[(k, dataset, "psnr")] for k in ("deblur", "interp", "joint"))
            if j is not None:
                assert j == pytest.approx((d + i) / 2, abs=0.011), (method, dataset)
    table3 = {r.method: r.values for r in paper.TABLE3}
    assert table3["only Self-Attention"][("deblur", "adobe240", "psnr")] == 31.98
    assert table3["only Cross-Attention"][("interp", "adobe240", "ssim")] == 0.9340
    assert table3["ALANET"] == {k: v for k, v in rows["ALANET (Ours)"].items()
                                if k[1] == "adobe240" and k[0] != "joint"}


def unit_values(root: Path, dataset: str, protocol: str, method: str, kind: str, metric: str) -> pd.Series:
    """Per test unit, from frames.csv, computed here: the protocol's convention (per_clip: the mean of the
    capped frames; per_clip_mse: the PSNR of the mean squared error, capped), joint = (deblur + interp) / 2."""
    if kind == "joint":
        return (unit_values(root, dataset, protocol, method, "deblur", metric)
                + unit_values(root, dataset, protocol, method, "interp", metric)) / 2
    frames = pd.read_csv(root / "results" / dataset / protocol / method / "frames.csv", dtype={"video": str})
    frames = frames[frames["kind"] == kind]
    cap = summary(root, dataset, protocol, method)["psnr_cap"]
    if metric != "psnr":
        return frames.groupby("video")[metric].mean()
    if CELL_PARAMS.headline[protocol] == "per_clip_mse":
        mse = (255.0 ** 2 * 10 ** (-frames["psnr"] / 10)).groupby(frames["video"]).mean()
        with np.errstate(divide="ignore"):
            return np.minimum(10 * np.log10(255.0 ** 2 / mse), cap)
    return frames["psnr"].clip(upper=cap).groupby(frames["video"]).mean()


def test_every_not_separable_mark_matches_an_independent_paired_bootstrap(page):
    """≈ on a cell iff the 95 % percentile interval of its paired difference to the column's best, over
    the same units (resampled here with numpy's own draws), contains zero. Cells whose interval ends
    within 5 % of its width from zero are too close to call with other draws and are left out."""
    import numpy as np

    root, tables = page
    methods = [*METHODS, "interp_only"]
    draws = np.random.default_rng(123).integers(0, len(UNITS), (20_000, len(UNITS)))
    checked = {True: 0, False: 0}
    for protocol in CELL_PARAMS.protocols:
        (table,) = [t for t in tables if t["section"] == f"table2-{protocol}" and t["body"].get("measured")]
        cells = measured_cells(table)
        for (method, kind, dataset, metric), cell in cells.items():
            s = summary(root, dataset, protocol, method)
            best = expected_best(root, protocol, methods, kind, dataset, metric)
            if method == best or not NEEDS[kind] <= set(s["tasks"]):
                assert "tie" not in cell["class"].split(), (method, kind, metric)
                continue
            diff = (unit_values(root, dataset, protocol, method, kind, metric)
                    - unit_values(root, dataset, protocol, best, kind, metric)).to_numpy()
            lo, hi = np.percentile(diff[draws].mean(1), [2.5, 97.5])
            if min(abs(lo), abs(hi)) < 0.05 * (hi - lo):
                continue
            tie = bool(lo <= 0 <= hi)
            assert ("tie" in cell["class"].split()) is tie and ("^≈" in cell["text"]) is tie, \
                (protocol, method, kind, dataset, metric, lo, hi)
            checked[tie] += 1
    assert checked[True] >= 4 and checked[False] >= 20, checked  # both kinds of cell were checked
