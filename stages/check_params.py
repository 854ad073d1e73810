"""Stage `check_params`: validate the whole params.yaml whenever it changes.

DVC reruns a stage only when one of the param keys it names changes, so an unknown key
(`train.epocs`) or a deleted section that no stage names would otherwise pass `dvc repro` in
silence. This stage depends on the file itself: it runs (about a second) after any edit, and stops
`dvc repro` with the same one-line message every stage gives, naming the key.
"""

from __future__ import annotations

import argparse
import logging

from alabench.cli import run_stage
from alabench.config import PARAMS_FILE, load_params

log = logging.getLogger("stages.check_params")


def main() -> None:
    load_params()
    log.info("%s is valid", PARAMS_FILE)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()
    run_stage("check_params", main)
