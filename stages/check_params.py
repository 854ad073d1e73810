"""Stage `check_params`: validate the whole params.yaml whenever it changes, before any other stage.

DVC reruns a stage only when one of the param keys it names changes, so an unknown key
(`train.epocs`) or a deleted section that no stage names would otherwise pass `dvc repro` in
silence. This stage depends on the file itself: it runs (about a second) after any edit, and stops
`dvc repro` with the same one-line message every stage gives, naming the key.

It also refuses, before anything is trained, what would otherwise fail late: a name that is not an
identifier (DVC builds stage names and shell commands from names, alabench.names), a method
without a package in baselines/, and a cascade whose parts do not address the task they are put
in. Every other stage depends on its output (alabench.layout.PARAMS_CHECKED), so that DVC always runs
it first: a command line is only ever built from names that passed. The output's bytes never change,
so a passing check reruns nothing downstream.
"""

from __future__ import annotations

import argparse
import logging
from alabench.cli import stage_main
from alabench.config import Params, load_params
from alabench.frames import atomic_write_text
from alabench.layout import PARAMS_CHECKED, PARAMS_FILE
from alabench.names import check_method_packages

log = logging.getLogger("stages.check_params")


def check_cascades(params: Params) -> None:
    """What each evaluate_cascade stage checks first (its parts address deblur and interpolate, train,
    and are in train.methods), now. Composing a cascade imports the methods (torch): only when there are some."""
    from alabench.cascade import find_cascade
    from alabench.methods import discover

    found = discover()
    for spec in params.evaluate.cascades:
        for dataset in params.train.datasets:
            find_cascade(spec.name, params, found, dataset)


def main() -> None:
    params = load_params()
    check_method_packages(params, str(PARAMS_FILE))
    if params.evaluate.cascades:
        check_cascades(params)
    atomic_write_text(PARAMS_CHECKED, f"{PARAMS_FILE} passed stages/check_params.py\n")
    log.info("%s is valid", PARAMS_FILE)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()
    stage_main("check_params", main)
