"""Stage `report`: results/ and training/ -> reports/index.html, table2.csv, table3.csv (+ an MLflow run).

Reads params.yaml. Renders whatever results exist and pass the checks of alabench.results_check
(missing, failed and left-out ones are named on the page; left-out ones in reports/metrics/skipped.json
too); then, if ``report.mlflow``, logs one `report` run per data set with the page and the tables as
artifacts. DVC skips this stage when nothing it depends on changed, so an up-to-date
`dvc repro` logs no new run.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from alabench.cli import stage_main
from alabench.config import load_params
from alabench.layout import REPORTS, expected_results
from alabench.report import build_report, write_report
from alabench.tracking import mlflow_run

log = logging.getLogger("stages.report")
OUT = REPORTS


def main() -> None:
    everything = load_params()
    params = everything.report
    report = build_report(Path("."), params, expected_results(everything), complete=True)
    for path, reason in report.skipped.items():
        log.warning("left out %s: %s", path, reason)
    paths = write_report(report, OUT)
    log.info("wrote %s", ", ".join(map(str, paths)))
    if not params.mlflow:
        return
    measured = report.table2[(report.table2["source"] == "measured") & (report.table2["kind"] == "joint")]
    for dataset in params.datasets:
        rows = measured[measured["dataset"] == dataset]
        metrics = {f"{r.protocol}.{r.method}.joint.{r.metric}": r.mean for r in rows.itertuples()
                   if math.isfinite(r.mean)}
        with mlflow_run(dataset, "report", params, {"stage": "report"}) as run:
            run.log_metrics(metrics, step=0)
            for path in paths:
                if path.is_dir():
                    run.log_artifacts(path, path.name)
                else:
                    run.log_artifact(path)
            run.log_artifacts(OUT / "assets", "assets")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()
    stage_main("report", main)
