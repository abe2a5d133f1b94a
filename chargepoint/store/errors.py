"""The store's errors, typed by what the caller should do: StoreError (the write was refused,
nothing stored), StoreDamaged (nothing is started on the file), StoreFull (the disk is full:
keep what was to be written and write it again once space returns)."""

from __future__ import annotations

import errno
import sqlite3

__all__ = ["StoreDamaged", "StoreError", "StoreFull", "disk_full"]

SQLITE_FULL = 13  # "database or disk is full" (the primary result code)
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class StoreError(Exception):
    """The store cannot be opened, or a write was refused; the message is one line."""


class StoreDamaged(StoreError):
    """The store file is corrupt: nothing is started on it; a person runs `store recover`."""


class StoreFull(StoreError):
    """The disk holding the state dir is full (SQLite's SQLITE_FULL, or ENOSPC/EDQUOT on a
    file write): nothing was written, and the same write succeeds once space returns. The
    caller keeps what it wanted to write (see chargepoint.core.disk_space)."""


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk (or the user's quota) is full."""
    if isinstance(exc, StoreFull):
        return True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF == SQLITE_FULL:
            return True
        return "database or disk is full" in str(exc)
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    return False
