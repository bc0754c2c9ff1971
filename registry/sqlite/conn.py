"""The SQLite connection: opening a file (pragmas, schema) and one write transaction.

WAL mode; ``synchronous=NORMAL`` survives a killed process (kill -9), ``FULL`` also a
power cut. Writes use ``BEGIN IMMEDIATE`` so several VTN processes can share one file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from registry.discovery import haversine_m
from registry.port import StoreUnavailable
from registry.sqlite.groups import GROUPS_SCHEMA, migrate_views
from registry.sqlite.schema import EVENTS_SCHEMA, SCHEMA, VIEWS_SCHEMA

WAL_AUTOCHECKPOINT_PAGES = 10_000


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """Open (creating) the file with the store's pragmas and make sure the schema is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA busy_timeout=10000")
    db.execute("PRAGMA foreign_keys=OFF")
    db.create_function("haversine_m", 4, haversine_m, deterministic=True)
    # discovery reads many rows: map the file instead of copying pages through read()
    db.execute("PRAGMA mmap_size=4294967296")
    db.execute("PRAGMA cache_size=-65536")
    # checkpoint every ~40 MB of WAL instead of ~4 MB: hot pages (index tails, the VEN
    # row) are copied back once per checkpoint, not once per 1000 pages, and the
    # checkpoint's fsync is paid 10x less often (registrations through the engine +49 %, see
    # docs/benchmarks.md, issue #5)
    db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    with immediate(db):
        for statement in (SCHEMA + VIEWS_SCHEMA + EVENTS_SCHEMA + GROUPS_SCHEMA).split(";"):
            if statement.strip():
                db.execute(statement)
        migrate_views(db)  # views are DER groups now (registry.sqlite.groups)
    return db


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction; rolled back whole on any error."""
    for attempt in range(50):
        try:
            db.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:  # locked beyond busy_timeout
            if attempt == 49:
                raise StoreUnavailable(str(exc)) from exc
            time.sleep(0.01)
    try:
        yield
        db.execute("COMMIT")  # may fail too (disk full): then roll back as well
    except BaseException:
        if db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL, IOERR)
            db.execute("ROLLBACK")
        raise
