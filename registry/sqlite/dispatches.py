"""Group dispatches on SQLite (the twin of registry.mongo.dispatches).

Tables (registry.sqlite.schema DISPATCHES_SCHEMA): ``group_dispatches`` (the record's JSON
plus the columns queries need: owner, group, rev, closed) and ``group_dispatch_members``
(one row per member DER). ``check_dispatches`` runs first in a commit: a stale
``dispatch_expect`` fails the whole batch with Conflict.
"""

from __future__ import annotations

import json
import sqlite3

from registry.events import DrEvent, EventDelivery
from registry.group_dispatch import DispatchMember, GroupDispatch
from registry.port import Batch, Conflict, Scope
from registry.port.dispatches import DispatchQuery, dispatch_visible, event_id_range
from registry.sqlite.events import DELIVERY_COLUMNS, delivery_of, event_of


def _dispatch_of(doc: str) -> GroupDispatch:
    return GroupDispatch.model_validate_json(doc)


def get_dispatch(db: sqlite3.Connection, dispatch_id: str, scope: Scope
                 ) -> GroupDispatch | None:
    visible, owner = dispatch_visible(scope)
    if not visible:
        return None
    row = db.execute("SELECT doc, aggregator_id FROM group_dispatches WHERE dispatch_id=?",
                     (dispatch_id,)).fetchone()
    if row is None or (owner is not None and row[1] != owner):
        return None
    return _dispatch_of(row[0])


def list_dispatches(db: sqlite3.Connection, q: DispatchQuery, scope: Scope
                    ) -> list[GroupDispatch]:
    visible, owner = dispatch_visible(scope)
    if not visible:
        return []
    where, params = ["1=1"], []
    for column, value in (("aggregator_id", owner), ("aggregator_id", q.aggregator_id),
                          ("grp", q.group)):
        if value is not None:
            where.append(f"{column}=?")
            params.append(value)
    if q.open_only:
        where.append("closed=0")
    if q.after_dispatch_id is not None:
        where.append("dispatch_id>?")
        params.append(q.after_dispatch_id)
    rows = db.execute(f"SELECT doc FROM group_dispatches WHERE {' AND '.join(where)} "
                      "ORDER BY dispatch_id LIMIT ?", (*params, q.limit)).fetchall()
    return [_dispatch_of(r[0]) for r in rows]


def open_dispatches(db: sqlite3.Connection) -> list[GroupDispatch]:
    rows = db.execute("SELECT doc FROM group_dispatches WHERE closed=0 ORDER BY dispatch_id"
                      ).fetchall()
    return [_dispatch_of(r[0]) for r in rows]


def dispatch_members(db: sqlite3.Connection, dispatch_id: str, scope: Scope
                     ) -> list[DispatchMember]:
    if get_dispatch(db, dispatch_id, scope) is None:
        return []
    rows = db.execute("SELECT doc FROM group_dispatch_members WHERE dispatch_id=? "
                      "ORDER BY device_id", (dispatch_id,)).fetchall()
    return [DispatchMember.model_validate_json(r[0]) for r in rows]


def dispatch_events(db: sqlite3.Connection, dispatch_id: str) -> list[DrEvent]:
    low, high = event_id_range(dispatch_id)
    rows = db.execute("SELECT doc, status FROM events WHERE event_id>=? AND event_id<? "
                      "ORDER BY event_id", (low, high)).fetchall()
    return [event_of(r) for r in rows]


def dispatch_deliveries(db: sqlite3.Connection, dispatch_id: str) -> list[EventDelivery]:
    low, high = event_id_range(dispatch_id)
    rows = db.execute(f"SELECT {DELIVERY_COLUMNS} FROM event_deliveries "
                      "WHERE event_id>=? AND event_id<? ORDER BY event_id, ven_id",
                      (low, high)).fetchall()
    return [delivery_of(r) for r in rows]


def check_dispatches(db: sqlite3.Connection, batch: Batch) -> None:
    for dispatch_id, expected in batch.dispatch_expect:
        row = db.execute("SELECT rev FROM group_dispatches WHERE dispatch_id=?",
                         (dispatch_id,)).fetchone()
        if expected is None and row is not None:
            raise Conflict(f"dispatch {dispatch_id} exists already")
        if expected is not None and (row is None or row[0] != expected):
            raise Conflict(f"dispatch {dispatch_id} is not at rev {expected}")


def write_dispatches(db: sqlite3.Connection, batch: Batch) -> None:
    if batch.dispatches:
        db.executemany(
            "INSERT INTO group_dispatches (dispatch_id, aggregator_id, grp, rev, closed, doc) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT(dispatch_id) DO UPDATE SET "
            "aggregator_id=excluded.aggregator_id, grp=excluded.grp, rev=excluded.rev, "
            "closed=excluded.closed, doc=excluded.doc",
            [(d.dispatch_id, d.aggregator_id, d.group, d.rev, int(d.closed),
              d.model_dump_json()) for d in batch.dispatches])
    if batch.dispatch_members:
        db.executemany(
            "INSERT INTO group_dispatch_members (dispatch_id, device_id, doc) VALUES (?,?,?) "
            "ON CONFLICT(dispatch_id, device_id) DO UPDATE SET doc=excluded.doc",
            [(m.dispatch_id, m.device_id, json.dumps(m.model_dump(mode="json")))
             for m in batch.dispatch_members])
