"""Opt schedules (oadrCreateOpt) on SQLite: reads, the windows covering an instant, the
batch upsert, and the discovery condition of ``available_at``.

A schedule is one row of ``opt_schedules``; the windows of a schedule that is not
cancelled are rows of ``opt_windows`` (replaced on every upsert), so "covering ``at``"
is an index range on ``end_us`` and a cancelled schedule covers nothing.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from registry.events import OptSchedule, OptType
from registry.port import Batch, Scope
from registry.sqlite.rows import us
from registry.sqlite.scope import scope_where

_OUT = OptType.OUT.value

# discovery's available_at: no optOut window of the DER's VEN covers the instant (params:
# at, at); a schedule without resource ids covers every DER of its VEN
NOT_OPTED_OUT = (
    "NOT EXISTS (SELECT 1 FROM opt_windows w JOIN opt_schedules s "
    "ON s.ven_id=w.ven_id AND s.opt_id=w.opt_id "
    f"WHERE w.ven_id=ders.ven_id AND w.opt_type='{_OUT}' AND w.end_us>? AND w.start_us<=? "
    "AND (s.all_resources=1 OR EXISTS (SELECT 1 FROM json_each(s.device_ids) j "
    "WHERE j.value=ders.device_id)))"
)


def _of(rows: list[tuple[str]]) -> list[OptSchedule]:
    return [OptSchedule.model_validate_json(r[0]) for r in rows]


def opts_of_ven(db: sqlite3.Connection, ven_id: str) -> list[OptSchedule]:
    return _of(db.execute("SELECT doc FROM opt_schedules WHERE ven_id=? ORDER BY opt_id",
                          (ven_id,)).fetchall())


def get_opt(db: sqlite3.Connection, ven_id: str, opt_id: str) -> OptSchedule | None:
    rows = db.execute("SELECT doc FROM opt_schedules WHERE ven_id=? AND opt_id=?",
                      (ven_id, opt_id)).fetchall()
    return _of(rows)[0] if rows else None


def opts_covering(db: sqlite3.Connection, at: datetime, scope: Scope,
                  opt_type: OptType | None) -> list[OptSchedule]:
    where, params = scope_where(scope)
    t = us(at)
    sql = (
        "SELECT doc FROM opt_schedules WHERE cancelled=0 AND "
        f"{where} "
        "AND EXISTS (SELECT 1 FROM opt_windows w WHERE w.ven_id=opt_schedules.ven_id "
        "AND w.opt_id=opt_schedules.opt_id AND w.end_us>? AND w.start_us<=?)"
    )
    args: list[Any] = [*params, t, t]
    if opt_type is not None:
        sql += " AND opt_type=?"
        args.append(OptType(opt_type).value)
    return _of(db.execute(sql + " ORDER BY ven_id, opt_id", args).fetchall())


# --- inside Store.commit's transaction ------------------------------------------------


def write_opts(db: sqlite3.Connection, batch: Batch) -> None:
    """Upsert on (ven_id, opt_id); the schedule's windows are replaced with it."""
    opts = batch.opts
    db.executemany(
        "INSERT INTO opt_schedules VALUES (?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(ven_id, opt_id) DO UPDATE SET aggregator_id=excluded.aggregator_id, "
        "account_id=excluded.account_id, opt_type=excluded.opt_type, "
        "cancelled=excluded.cancelled, all_resources=excluded.all_resources, "
        "device_ids=excluded.device_ids, doc=excluded.doc",
        [(o.ven_id, o.opt_id, o.aggregator_id, o.account_id, OptType(o.opt_type).value,
          int(o.cancelled_at is not None), int(not o.resource_ids), json.dumps(o.device_ids),
          o.model_dump_json()) for o in opts])
    db.executemany("DELETE FROM opt_windows WHERE ven_id=? AND opt_id=?",
                   [(o.ven_id, o.opt_id) for o in opts])
    db.executemany(
        "INSERT INTO opt_windows VALUES (?,?,?,?,?)",
        [(o.ven_id, o.opt_id, OptType(o.opt_type).value, us(w.start), us(w.end))
         for o in opts if o.cancelled_at is None for w in o.windows])
