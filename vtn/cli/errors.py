"""What a failing ``vtn`` command prints: one line on stderr and exit status 1.

Every exception a user can cause (a port in use, a store that cannot be reached or
written, a directory without permission, a bad store URL) becomes a
:class:`click.ClickException` naming what to fix; the traceback is shown only under
``vtn --debug``. Bugs still print as one line (``internal error: ...``), with a hint to
rerun with ``--debug``.
"""

from __future__ import annotations

import errno
import sqlite3

import click
from pydantic import ValidationError

from registry.port import StoreError
from vtn.services.base import OadrError


def describe(exc: BaseException) -> str:
    """One line for the operator: what failed and, where we know it, what to do."""
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"{_strip_errno(exc)} (is another vtn serve running? choose --port)"
    if isinstance(exc, PermissionError):
        where = f" on {exc.filename}" if exc.filename else ""
        return f"permission denied{where} (check the owner of the data directory)"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):
        return f"store is read-only ({exc}): check the file's and directory's permissions"
    if isinstance(exc, StoreError):
        return f"store: {exc}"
    if isinstance(exc, sqlite3.Error):
        return f"store: sqlite: {exc}"
    if isinstance(exc, OadrError):
        return exc.description
    if isinstance(exc, ValidationError):
        return "invalid value: " + validation_summary(exc)
    if isinstance(exc, ValueError | OSError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc} (rerun with vtn --debug for details)"


def validation_summary(exc: ValidationError) -> str:
    """pydantic's errors as ``loc: message`` pairs, without its documentation URL footer."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "value"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def as_click(exc: BaseException) -> click.ClickException:
    return click.ClickException(describe(exc))


def _strip_errno(exc: OSError) -> str:
    text = str(exc)
    prefix = f"[Errno {exc.errno}] "
    return text.removeprefix(prefix)
