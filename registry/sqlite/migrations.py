"""Numbered schema migrations of the SQLite store, kept in ``PRAGMA user_version``.

Tables and indexes are created by the idempotent DDL of :mod:`registry.sqlite.schema`
on every open; a migration is for what ``CREATE ... IF NOT EXISTS`` cannot do (a column
on an existing table, a backfill, a changed index). To add one, append a function to
:data:`MIGRATIONS`: it gets the connection inside the write transaction that also bumps
the version, so it is applied whole or not at all, once, even with several processes
opening the file at once. Version 1 is the schema of the first versioned release; a
store without a version (``user_version`` 0) is the release before it, which needs
nothing but the DDL.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from registry.port import StoreError

log = logging.getLogger(__name__)
Migration = Callable[[sqlite3.Connection], None]


def _v1_baseline(db: sqlite3.Connection) -> None:
    """The unversioned release: its tables are those of schema.py, already created."""


# MIGRATIONS[i] brings the store from version i to i + 1
MIGRATIONS: list[Migration] = [_v1_baseline]
CURRENT = len(MIGRATIONS)


class SchemaTooNew(StoreError):
    """The file was written by a newer vtn; opening it could lose what that one stores."""


def version_of(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, immediate: Callable[[sqlite3.Connection], object]
            ) -> tuple[int, int]:
    """Apply the missing migrations, each in its own write transaction; returns
    (version found, version now)."""
    found = version_of(db)
    fresh = found == 0 and db.execute("SELECT 1 FROM vens LIMIT 1").fetchone() is None
    if found > CURRENT:
        raise SchemaTooNew(f"store schema version {found} is newer than this vtn's "
                           f"({CURRENT}): upgrade vtn, or restore a backup")
    for target in range(found + 1, CURRENT + 1):
        with immediate(db):  # type: ignore[attr-defined]
            if version_of(db) >= target:  # another process got there first
                continue
            MIGRATIONS[target - 1](db)
            db.execute(f"PRAGMA user_version={target}")
        log.log(logging.DEBUG if fresh else logging.INFO,
                "store schema migrated to version %d (%s)", target,
                MIGRATIONS[target - 1].__name__)
    return found, version_of(db)
