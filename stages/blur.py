"""Stage `blur@<dataset>`: eq. 7 on a data set's test split, both protocols, with manifest.csv.

Training splits are not written: training blurs them on the fly (paper §5.2).
"""

from __future__ import annotations

import argparse
import logging
from alabench.blur import prepare_split
from alabench.cli import stage_main
from alabench.config import ParamError, load_params
from alabench.frames import atomic_dir
from alabench.layout import prepared_dir, sharp_dir

log = logging.getLogger("stages.blur")


def main(dataset: str) -> None:
    params = load_params()
    if dataset not in params.blur.datasets:
        raise ParamError(f"--dataset {dataset} is not in blur.datasets = {list(params.blur.datasets)}; add it there")
    out = prepared_dir(dataset)
    with atomic_dir(out) as tmp:
        counts = prepare_split(sharp_dir(dataset, "test"), tmp / "test", params.blur, final_split=out / "test")
    log.info("%s test inputs: %s", dataset, counts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True, help="a name listed in blur.datasets")
    args = parser.parse_args()
    stage_main("blur", lambda: main(args.dataset))
