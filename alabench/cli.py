"""What every stage does around its work: logging, and a one-line message for errors a user can fix."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from alabench.errors import UserError


def run_stage(name: str, work: Callable[[], None]) -> None:
    """Run ``work`` with INFO logging; a user error prints ``error: ...`` and exits 1, no traceback."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    log = logging.getLogger(f"stages.{name}")
    start = time.perf_counter()
    try:
        work()
    except UserError as err:
        log.error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    log.info("done in %.1f s", time.perf_counter() - start)
