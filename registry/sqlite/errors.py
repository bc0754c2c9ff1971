"""SQLite failures that mean "the database cannot take this right now", as the port's
:class:`StoreUnavailable`: disk full, I/O errors, locks held beyond the busy timeout,
a file that cannot be opened. Callers answer them with 503 (OpenADR and API), retryable,
logged in one line; once space returns, the same connection works again.

Classified by the primary result code (``sqlite_errorcode``, Python 3.11+; extended
codes such as SQLITE_IOERR_WRITE share it in their low byte), else by the message.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from registry.port import StoreUnavailable

SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 5, 6, 10, 13, 14
TRANSIENT = {SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN}
MESSAGES = ("database or disk is full", "disk i/o error", "database is locked",
            "database table is locked", "unable to open database file")
T = TypeVar("T")


def unavailable(exc: BaseException) -> StoreUnavailable | None:
    """The StoreUnavailable this sqlite3 error stands for, or None (a bug, corruption)."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc)
    if (code is not None and code & 0xFF in TRANSIENT) or text.lower().startswith(MESSAGES):
        name = getattr(exc, "sqlite_errorname", None)
        return StoreUnavailable(f"sqlite: {text}" + (f" ({name})" if name else ""))
    return None


def _guard(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    @functools.wraps(fn)
    async def guarded(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except sqlite3.Error as exc:
            mapped = unavailable(exc)
            if mapped is None:
                raise
            raise mapped from exc

    return guarded


def translate_errors(cls: type[T]) -> type[T]:
    """Class decorator: every public coroutine method raises StoreUnavailable instead of
    a transient sqlite3 error (methods added later are covered too)."""
    for name, fn in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(fn):
            setattr(cls, name, _guard(fn))
    return cls
