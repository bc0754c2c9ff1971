"""Operator summaries over SQLite (registry.port.ops): group-by counts on indexed columns."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from registry.port.ops import FleetSummary
from registry.sqlite.migrations import version_of


def fleet_summary(db: sqlite3.Connection, path: Path) -> FleetSummary:
    out = FleetSummary(schema_version=version_of(db))
    for liveness, registered, n in db.execute(
        "SELECT liveness, registered, count(*) FROM vens GROUP BY 1, 2"
    ):
        out.vens_by_liveness[liveness] = out.vens_by_liveness.get(liveness, 0) + n
        out.vens_registered += n if registered else 0
    for liveness, n in db.execute("SELECT liveness, count(*) FROM ders GROUP BY 1"):
        out.ders_by_liveness[liveness] = n
    for device_class, n, cap, avail in db.execute(
        "SELECT device_class, count(*), total(max_capacity), total(available_capacity) "
        "FROM ders GROUP BY 1"
    ):
        out.capacity_by_class[device_class] = [n, cap, avail]
    out.outbox_pending = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    out.size_bytes = sum(p.stat().st_size for p in _files(path) if p.exists())
    return out


def _files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
