"""The event log on SQLite: appends inside a transaction, tails, and scoped queries."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from registry.discovery import LogQuery
from registry.models import LogEntry
from registry.port import Scope
from registry.sqlite.inlist import in_list
from registry.sqlite.rows import LOG_SELECT, log_entry
from registry.sqlite.scope import scope_where

INSERT_LOG = (
    "INSERT INTO log (at, kind, actor, ven_id, device_id, aggregator_id, account_id, "
    "data) VALUES (?,?,?,?,?,?,?,?)"
)


def read_log(
    db: sqlite3.Connection, after: int, limit: int, ven_id: str | None
) -> list[LogEntry]:
    sql = f"{LOG_SELECT} WHERE seq > ?"
    params: list[Any] = [after]
    if ven_id is not None:
        sql += " AND ven_id=?"
        params.append(ven_id)
    rows = db.execute(f"{sql} ORDER BY seq LIMIT ?", (*params, limit)).fetchall()
    return [log_entry(r) for r in rows]


def last_seq(db: sqlite3.Connection) -> int:
    return db.execute("SELECT coalesce(max(seq), 0) FROM log").fetchone()[0]


def log_filters(query: LogQuery, scope: Scope) -> tuple[list[str], list[object]]:
    """WHERE clauses and parameters of a log query's scope, kinds, VEN and device (the
    cursor and the order are the caller's)."""
    where, params = scope_where(scope)
    clauses, args = [where], list(params)
    if query.kind:
        clause, kind_params = in_list("kind", list(query.kind))
        clauses.append(clause)
        args.extend(kind_params)
    for column in ("ven_id", "device_id"):
        value = getattr(query, column)
        if value is not None:
            clauses.append(f"{column}=?")
            args.append(value)
    return clauses, args


def find_log(db: sqlite3.Connection, query: LogQuery, scope: Scope) -> list[LogEntry]:
    clauses, args = log_filters(query, scope)
    rows = db.execute(
        f"{LOG_SELECT} WHERE seq > ? AND {' AND '.join(clauses)} ORDER BY seq LIMIT ?",
        (query.after, *args, query.limit),
    ).fetchall()
    return [log_entry(r) for r in rows]


# --- inside a write transaction -------------------------------------------------------


def append_log(db: sqlite3.Connection, entries: list[LogEntry]) -> list[LogEntry]:
    """Insert in one statement; seqs are consecutive (AUTOINCREMENT, one writer holds
    the lock), so the last rowid gives them all. The entries get their seq."""
    if not entries:
        return []
    rows = [
        (e.at.timestamp(), e.kind, e.actor, e.ven_id, e.device_id, e.aggregator_id,
         e.account_id, json.dumps(e.data, default=str))
        for e in entries
    ]
    if len(rows) == 1:
        last = db.execute(INSERT_LOG, rows[0]).lastrowid
    else:
        db.executemany(INSERT_LOG, rows)
        last = db.execute("SELECT last_insert_rowid()").fetchone()[0]
    assert last is not None
    for seq, e in enumerate(entries, start=last - len(entries) + 1):
        e.seq = seq
    return entries
