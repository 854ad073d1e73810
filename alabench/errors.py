"""The one base class for errors a user can fix: stages print them as one line, without a traceback."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class UserError(Exception):
    """Bad input, a bad parameter or a missing prerequisite; the message names it and what to do."""


class DiskFull(UserError, OSError):
    """The disk (or quota) filled up while an output was written; the previous output is kept."""


@contextmanager
def disk_full_names(target: Path | str) -> Iterator[None]:
    """Turn a full disk inside the block into DiskFull naming ``target``, the output being written
    (the OS error names a temporary file, or nothing at all where a write or a close failed)."""
    try:
        yield
    except OSError as err:
        if err.errno not in DISK_FULL or isinstance(err, DiskFull):
            raise
        raise DiskFull(f"disk full while writing {target}; free space and rerun (its previous version, "
                       "if any, is kept whole)") from None


def unreadable(path: Path | str, err: BaseException, todo: str) -> str:
    """The message for a torch file that does not load: ``path``, the kind of failure and ``todo``.
    torch's own text is left out: for a refused pickle it advises ``weights_only=False``, which would
    run whatever code a file from elsewhere holds (nothing here loads that way)."""
    return f"{path}: cannot be read ({type(err).__name__}: truncated, damaged or not a file of tensors); {todo}"
