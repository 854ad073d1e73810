"""`python -m stages.export_inputs --dataset D --protocol P --out DIR`: a prepared protocol's test
inputs as a plain folder, for a method that runs elsewhere (not a DVC stage: its folder leaves the repo).

Writes DIR/<clip>/input_XXXXX.png, DIR/protocol.json (frame rates, eq. 7 blur, the expected output
files, inputs_sha256) and DIR/README.txt; see ``alabench.submission``. Run `dvc repro blur@D` first.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from alabench.vocabulary import PROTOCOLS
from alabench.cli import stage_main
from alabench.config import load_params
from alabench.submission import export_inputs, read_inputs

log = logging.getLogger("stages.export_inputs")


def main(dataset: str, protocol: str, out: Path) -> None:
    params = load_params()
    inputs = read_inputs(Path("."), dataset, protocol)
    export_inputs(inputs, params.blur, out)
    log.info("exported %d inputs of %d clips (%s/%s, inputs_sha256 %s) to %s", sum(map(len, inputs.files.values())),
             len(inputs.files), dataset, protocol, inputs.sha256, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True, help="a data set prepared by blur@<dataset>")
    parser.add_argument("--protocol", required=True, choices=PROTOCOLS)
    parser.add_argument("--out", required=True, type=Path, help="a new (or empty) folder")
    args = parser.parse_args()
    stage_main("export_inputs", lambda: main(args.dataset, args.protocol, args.out))
