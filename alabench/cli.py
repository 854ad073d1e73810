"""What every stage does around its work: logging, and a one-line message for errors a user can fix."""

from __future__ import annotations

import atexit
import errno
import logging
import os
import sys
import time
from collections.abc import Callable

from alabench.errors import DISK_FULL, UserError

# OS errors that name a file the user can fix (permissions, a full or read-only disk): one line, not a
# traceback. Any other OSError is a bug or an unexpected state, and keeps its traceback.
_FIXABLE = {errno.EACCES: "permission denied: make its folder writable by you (`chmod -R u+w {folder}`) and run again",
            errno.EPERM: "operation not permitted: check the owner and permissions of {folder}, then run again",
            errno.EROFS: "read-only file system: run from a writable checkout",
            errno.ENOSPC: "no space left on device: free some space and run again",
            errno.EDQUOT: "disk quota exceeded: free some space and run again"}
INTERRUPTED = "interrupted (Ctrl-C): finished outputs are kept; run the same command again to do the rest"


def os_error_message(err: OSError) -> str | None:
    """``<file>: <what to do>`` for an OS error a user can fix, else None. A full disk is fixable
    even where the error names no file (a failed write or close, deep in a library)."""
    if err.errno not in _FIXABLE:
        return None
    if err.filename is None:
        return _FIXABLE[err.errno] if err.errno in DISK_FULL else None
    return f"{err.filename}: {_FIXABLE[err.errno].format(folder=os.path.dirname(err.filename) or '.')}"


def run_stage(name: str, work: Callable[[], None]) -> None:
    """Run ``work`` with INFO logging. A user error, a fixable OS error (permissions, disk full) or
    Ctrl-C prints one ``error: ...`` line (once: not also as a log line) and exits 1 (130 for Ctrl-C),
    without a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    log = logging.getLogger(f"stages.{name}")
    start = time.perf_counter()
    try:
        work()
    except UserError as err:
        _fail(str(err), 1)
    except KeyboardInterrupt:
        _fail(INTERRUPTED, 130)
    except OSError as err:
        message = os_error_message(err)
        if message is None:
            raise
        _fail(message, 1)
    log.info("done in %.1f s", time.perf_counter() - start)


def stage_main(name: str, work: Callable[[], None]) -> None:
    """A stage's ``__main__``: :func:`run_stage`, then, on success, exit at once. Tearing down the
    interpreter (finalising torch, MLflow, SQLAlchemy and their ~10,000 modules) takes about 0.9 s
    after every stage, longer than a tiny stage's own work; the outputs are written and closed by
    then, so the exit handlers run (multiprocessing joins its children, MLflow ends its runs), the
    streams are flushed, and the process ends without the teardown. A failure exits as usual."""
    run_stage(name, work)
    atexit._run_exitfuncs()  # the handlers a normal exit would run, in the same order (logging's shutdown too)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code) from None
