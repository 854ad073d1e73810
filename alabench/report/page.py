"""Assembling the page: each protocol's tables and figures, the notes on what is missing, the provenance,
rendered through reports/templates/index.html.j2; and writing it, with its assets and CSV tables.

Each builder below fills a few of the template's keys from a :class:`Scope` (what was read and which
methods are shown); :func:`build_report` only calls them in order.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from alabench import paper
from alabench.config import ReportParams
from alabench.dvc_metrics import joint_plot, write_metrics
from alabench.frames import atomic_dir, atomic_write_text
from alabench.layout import Expected
from alabench.report.ablation import comparison_rows
from alabench.report.figures import (knockout_figure, per_clip_figure, residue_figure, strip_figure,
                                     training_figure)
from alabench.report.probes import SPLIT_LABEL, THRESHOLD, metrics_values, probe_sections, probe_table
from alabench.report.provenance import provenance
from alabench.report.results import Inputs, compare, last_epoch_rise, load_results, not_in_report
from alabench.report.rows import (
    COMPARISON_CONVENTION,
    CONVENTION_COLUMNS,
    SVB_COLUMNS,
    convention_rows,
    grid,
    headline_table,
    protocol_comparison,
    runtime_rows,
    seed_rows,
    sharp_vs_blurry,
    supplied_notes,
    trained_note,
)
from alabench.report.tables import REFERENCE, beats_matrix, csv_table, measured_table
from alabench.sources.manifest import flagged_notes
from alabench.vocabulary import KIND_LABEL, KINDS, METRIC, METRICS, headline_convention
from alabench.viewer import viewer_set

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "reports" / "templates"
TABLE3_KINDS = ("deblur", "interp")  # the paper's Table 3 has no joint column


@dataclass
class Report:
    """The page, its tables (table2.csv, table3.csv), its assets and what was left out: all of it in
    memory, so that :func:`write_report` replaces the previous page only once everything is made."""

    html: str
    table2: pd.DataFrame
    table3: pd.DataFrame
    assets: dict[str, bytes | Path] = field(default_factory=dict)  # path under the page's folder -> content or source
    skipped: dict[str, str] = field(default_factory=dict)  # folder or file left out -> why
    probes: pd.DataFrame | None = None  # knock-out costs (alabench.report.probes.probe_table)


@dataclass
class Scope:
    """What every builder of the page reads: the results read under ``root``, the methods shown, and the
    assets (figures, viewer frames) and viewers gathered so far, in page order."""

    root: Path
    params: ReportParams
    inputs: Inputs
    expected: list[Expected]
    found: list[str]  # methods with a result, baselines first (Inputs.methods)
    methods: list[str]  # those, then methods params ask for that have none
    ablation: list[str]  # Table 3's rows that have a result
    assets: dict[str, bytes | Path] = field(default_factory=dict)
    viewers: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, root: Path, params: ReportParams, expected: list[Expected], complete: bool) -> Scope:
        """``complete``: ``expected`` is everything params.yaml asks for, so other results/ folders are left out."""
        asked = {(e.dataset, e.protocol, e.method) for e in expected} if complete else None
        inputs = load_results(root, params.datasets, params.protocols, params.headline, asked)
        found = inputs.methods()
        methods = list(dict.fromkeys([*found, *(e.method for e in expected)]))
        return cls(root, params, inputs, list(expected), found, methods, [m for m in params.ablation if m in found])


def _columns(kinds: tuple[str, ...], datasets: tuple[str, ...],
             metrics: tuple[str, ...] = METRICS) -> list[tuple[str, str, str]]:
    """(kind, dataset, metric) columns of a grid, in the paper's order: kind, then data set, then metric."""
    return [(kind, dataset, metric) for kind in kinds for dataset in datasets for metric in metrics]


def protocol_figures(scope: Scope, protocol: str, dataset: str) -> list[tuple[str, str]]:
    """The strip, residue and per-unit figures of one data set, added to the assets: (title, path)."""
    p = scope.params
    drawn = ((f"Figure 4-style strip, {dataset}",
              strip_figure(scope.inputs, scope.root, dataset, protocol, scope.found, p.zoom)),
             (f"Figure 5-style residues, {dataset}",
              residue_figure(scope.inputs, scope.root, dataset, protocol, scope.ablation or scope.found,
                             p.residue_max)),
             (f"Joint PSNR per test unit, {dataset}", per_clip_figure(scope.inputs, dataset, protocol, scope.found)))
    shown = []
    for title, png in drawn:
        if png:
            path = f"assets/figures/{len(scope.assets):02d}-{dataset}-{protocol}.png"
            scope.assets[path] = png
            shown.append((title, path))
    return shown


def protocol_media(scope: Scope, protocol: str) -> list[tuple[str, str]]:
    """Each data set's figures, then its frame viewer (whose frames join the assets): the figures."""
    figures = []
    for dataset in scope.params.datasets:
        figures += protocol_figures(scope, protocol, dataset)
        folders = {r.method: r.folder for r in scope.inputs.results
                   if r.ok and (r.dataset, r.protocol) == (dataset, protocol)}
        viewer, copies = viewer_set(scope.root, dataset, protocol, folders)
        if viewer:
            scope.viewers.append(viewer)
            scope.assets.update(copies)
    return figures


def headline_tables(scope: Scope, protocol: str, measured: pd.DataFrame) -> list[dict[str, Any]]:
    """The compact table of each data set, naming the command of each result params ask for that is not here."""
    return [headline_table(measured, scope.methods, d, {e.method: e.command for e in scope.expected
                                                        if (e.protocol, e.dataset) == (protocol, d)})
            for d in scope.params.datasets]


def comparisons(scope: Scope, protocol: str) -> dict[str, list[dict[str, Any]]]:
    """Who beats whom in Tables 2 and 3, and Table 3's pairs with their power."""
    datasets, inputs = scope.params.datasets, scope.inputs
    return {"matrices": [m for d in datasets for kind in KINDS
                         if (m := beats_matrix(inputs, protocol, d, scope.found, kind))],
            "matrices3": [m for d in datasets for kind in TABLE3_KINDS
                          if (m := beats_matrix(inputs, protocol, d, scope.ablation, kind))],
            "power3": [row for d in datasets
                       for row in comparison_rows(inputs, compare, protocol, d, scope.ablation, scope.found)]}


def row_notes(scope: Scope, protocol: str) -> dict[str, dict[str, str]]:
    """Beside each method's row: its † counterpart, its size against the published model and whether its
    validation still rose when training stopped (the first data set's result of ``protocol``)."""
    notes = {}
    for method in scope.found:
        result = next((r for r in scope.inputs.results if (r.method, r.protocol) == (method, protocol)), None)
        if result is None:
            continue
        trained_on = result.summary.get("trained_on") or result.dataset
        note = trained_note(method, result.summary, last_epoch_rise(scope.root, trained_on, method), paper.TABLE2)
        if note:
            notes[method] = note
    return notes


def protocol_section(scope: Scope, protocol: str, measured: pd.DataFrame, ablated: pd.DataFrame,
                     probes: pd.DataFrame) -> dict[str, Any]:
    """Everything the page shows of one protocol, under its headline convention."""
    datasets, notes = scope.params.datasets, supplied_notes(scope.inputs, protocol)
    return {"name": protocol, "convention": headline_convention(protocol, scope.params),
            "headline": headline_tables(scope, protocol, measured),
            "table2": grid(measured, scope.found, _columns(KINDS, datasets), paper.TABLE2,
                           {**row_notes(scope, protocol), **notes}),
            "table3": grid(ablated, scope.ablation, _columns(TABLE3_KINDS, datasets), paper.TABLE3, notes),
            **comparisons(scope, protocol),
            "seeds": seed_rows(scope.inputs, protocol, scope.found, datasets),
            "conventions": convention_rows(scope.inputs, protocol, scope.found, datasets),
            "probes": probe_sections(probes, protocol, datasets),
            "figures": protocol_media(scope, protocol)}


def training_figures(scope: Scope) -> list[tuple[str, str]]:
    """(caption, path) of each data set's training curves and tracked knock-out costs, added to the assets."""
    shown = []
    for dataset in scope.params.datasets:
        for name, draw, caption in (
                ("training", training_figure, f"Training curves, {dataset} (runs whose checkpoint exists here)"),
                ("knockouts", knockout_figure, f"Knock-out cost against training steps, {dataset} "
                                               "(validation, each epoch: train.track_knockout)")):
            if png := draw(scope.root, dataset):
                path = f"assets/figures/{name}-{dataset}.png"
                scope.assets[path] = png
                shown.append((caption, path))
    return shown


def across_protocols(scope: Scope) -> dict[str, Any]:
    """The tables that compare protocols: all_blurry vs mixed, and sharp vs blurry inputs under mixed."""
    protocols, inputs, found, datasets = set(scope.params.protocols), scope.inputs, scope.found, scope.params.datasets
    return {"comparison": protocol_comparison(inputs, found, datasets) if {"all_blurry", "mixed"} <= protocols else [],
            "sharp_vs_blurry": sharp_vs_blurry(inputs, found, datasets) if "mixed" in protocols else [],
            "svb_convention": headline_convention("mixed", scope.params), "svb_columns": SVB_COLUMNS,
            "comparison_convention": COMPARISON_CONVENTION}


def gaps(scope: Scope) -> dict[str, Any]:
    """What is not on the page: failed evaluations, missing results (with their commands), folders left
    out by a check, and test videos kept although flagged."""
    missing = [*scope.inputs.missing, *not_in_report(scope.inputs, scope.expected)]
    missing += [f"Table 3: no result for ablation method {m}" for m in scope.params.ablation if m not in scope.found]
    failed = [{"where": f"{r.dataset}/{r.protocol}/{r.method}", "error": r.summary.get("error") or "no averages"}
              for r in scope.inputs.results if not r.ok]
    return {"failed": failed, "missing": missing, "skipped": scope.inputs.skipped,
            "flagged": flagged_notes(scope.root, scope.params.datasets)}


def published() -> dict[str, Any]:
    """The paper's Tables 2 and 3 on their own, as published (PSNR and SSIM only)."""
    empty = pd.DataFrame(columns=["method"])
    return {"paper_table2": grid(empty, [], _columns(KINDS, paper.DATASETS, ("psnr", "ssim")), paper.TABLE2),
            "paper_table3": grid(empty, [], _columns(TABLE3_KINDS, ("adobe240",), ("psnr", "ssim")), paper.TABLE3)}


def labels(params: ReportParams) -> dict[str, Any]:
    """The words the template prints: labels, kinds and metrics, each protocol's convention, the reference."""
    return {"datasets": params.datasets, "kind_label": {**KIND_LABEL, **SPLIT_LABEL},
            "metric_label": {m: METRIC[m].label for m in METRICS}, "kinds": KINDS, "metrics": METRICS,
            "headline": dict(params.headline), "reference": REFERENCE,
            "convention_columns": CONVENTION_COLUMNS, "probe_threshold": THRESHOLD}


def render(context: dict[str, Any]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("index.html.j2").render(**context)


def _size(content: bytes | Path) -> int:
    return len(content) if isinstance(content, bytes) else Path(content).stat().st_size


def build_report(root: Path, params: ReportParams, expected: list[Expected] = (),  # type: ignore[assignment]
                 complete: bool = False) -> Report:
    """Read ``root``'s results and training history; return the page, both tables and the page's
    assets (figures, viewer frames). Never raises on partial results: whatever ``expected`` names
    that is not here is listed with its command. ``complete``: ``expected`` is everything params.yaml
    asks for (the stage), so a results/ folder it does not name is left out; results failing a check
    (alabench.results_check) are always left out, and listed."""
    scope = Scope.read(root, params, expected, complete)
    probes = probe_table(r for r in scope.inputs.results if not r.outside)
    t2 = [measured_table(scope.inputs, p, scope.found, params.datasets) for p in params.protocols]
    t3 = [measured_table(scope.inputs, p, scope.ablation, params.datasets, TABLE3_KINDS) for p in params.protocols]
    protocols = [protocol_section(scope, *tables, probes) for tables in zip(params.protocols, t2, t3)]
    training = training_figures(scope)
    html = render({**labels(params), **across_protocols(scope), **gaps(scope), **published(),
                   "protocols": protocols, "runtime": runtime_rows(scope.inputs, scope.found), "training": training,
                   "provenance": provenance(root), "viewers": scope.viewers, "asset_count": len(scope.assets),
                   "asset_bytes": sum(_size(c) for c in scope.assets.values())})
    return Report(html, csv_table(t2, paper.TABLE2, "2"), csv_table(t3, paper.TABLE3, "3"), scope.assets,
                  {s.path: s.reason for s in scope.inputs.skipped}, probes)


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """``out_dir``/assets/ (swapped in whole), then index.html, table2.csv, table3.csv, joint.csv and the
    metrics/ folder (alabench.dvc_metrics), each written atomically: a report that fails to render leaves
    the previous one in place. Returns the files, then the metrics folder."""
    paths = [out_dir / name for name in ("index.html", "table2.csv", "table3.csv", "joint.csv")]
    with atomic_dir(out_dir / "assets") as tmp:
        for name, content in report.assets.items():
            target = tmp / Path(name).relative_to("assets")
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copyfile(content, target)
    atomic_write_text(paths[0], report.html)
    atomic_write_text(paths[1], report.table2.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(paths[2], report.table3.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(paths[3], joint_plot(report.table2).to_csv(index=False, float_format="%.6g"))
    costs = metrics_values(report.probes) if report.probes is not None else {}
    return [*paths, write_metrics(report.table2, out_dir / "metrics", report.skipped, costs)]
