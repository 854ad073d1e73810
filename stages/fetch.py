"""Stage `fetch@<dataset>`: real footage into data/sharp/<dataset>/<split>/<clip>/%05d.png, with
data/raw/<dataset>/manifest.csv (one row per video: ok, rejected or failed, and why).

One such stage exists per data set named in `fetch.datasets` (adobe240: download, youtube240:
crawl, local: your own videos); the work is `alabench.sources.<dataset>.build`. Outputs persist
between runs, so a re-run after a failure or a kill redoes only what is missing.
"""

from __future__ import annotations

import argparse
import importlib
import typing
from pathlib import Path

from alabench.blur import write_video_map
from alabench.cli import stage_main
from alabench.config import ParamError, load_params
from alabench.config_sources import RealDatasetName
from alabench.layout import MANIFEST, raw_dir, sharp_dir


def main(dataset: str) -> None:
    params = load_params()
    if dataset not in params.fetch.datasets:
        raise ParamError(f"--dataset {dataset} is not in fetch.datasets = {dict(params.fetch.datasets)}; add it there")
    source = importlib.import_module(f"alabench.sources.{dataset}")
    raw, sharp = raw_dir(dataset), sharp_dir(dataset)
    source.build(params, Path(params.fetch.datasets[dataset]), raw, sharp)
    write_video_map(raw / MANIFEST, sharp)  # the test units: alabench.stats averages per video


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True, choices=typing.get_args(RealDatasetName))
    args = parser.parse_args()
    stage_main("fetch", lambda: main(args.dataset))
