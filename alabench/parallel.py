"""One way to run work in parallel processes, or in this process when one worker is asked for."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any


class InProcess(Executor):
    """An executor that runs each call at once in this process: easier to debug and profile."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # handed to the caller through the future, as a pool would
            future.set_exception(err)
        return future

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int = 1) -> Iterator[Any]:
        return map(fn, *iterables)  # lazy, so a progress bar moves with the work


def _quiet_sigint() -> None:
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))  # no traceback per worker; the parent reports


def executor(workers: int) -> Executor:
    """``workers`` processes, or :class:`InProcess` for one. Ctrl-C reaches the whole process group;
    the workers then exit at once without a word, and the main process says it once (alabench.cli)."""
    return ProcessPoolExecutor(workers, initializer=_quiet_sigint) if workers > 1 else InProcess()
