"""DR events and their per-VEN deliveries on SQLite: scoped reads, target resolution and
the batch writes (expectations, status changes, upserts, answers, distribute markers).

Scope (registry.port.events) is part of every query: an aggregator sees the events it
created and those with a delivery to one of its VENs (an ``EXISTS`` on the
``event_deliveries_aggregator`` index), a prosumer those with a delivery to its account;
of deliveries, a tenant sees only its own. ``current_until_us`` (DrEvent.current_until)
is kept on the event and on each of its deliveries, so ``events_for_ven`` is one range
of the ``event_deliveries_ven`` index joined to the events.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from registry.events import DrEvent, EventDelivery, EventStatus, EventTargets, OptType
from registry.group_model import DEFAULT_GROUP, Group, default_group
from registry.port import Batch, Conflict, EventQuery, Scope
from registry.port.batch import DISTRIBUTE_MARKER
from registry.port.events import build_deliveries, owned_deliveries
from registry.port.groups import target_name
from registry.sqlite import groups
from registry.sqlite.rows import at_us, us
from registry.sqlite.scope import scope_where

FINAL = (EventStatus.COMPLETED.value, EventStatus.CANCELLED.value)

DELIVERY_COLUMNS = (
    "event_id, ven_id, aggregator_id, account_id, current_until_us, device_ids, "
    "resource_ids, delivered_mod, delivered_us, opt, opt_mod, opt_us, resource_opts"
)
_D_COLUMNS = ", ".join(f"d.{c.strip()}" for c in DELIVERY_COLUMNS.split(","))
# the whole event; events_for_ven reads e.doc alone (targets left empty: a 100k-DER target
# list is megabytes of JSON, and what the VEN gets is its delivery)
EVENT_SELECT = "SELECT json_set(e.doc, '$.targets', json(e.targets)), e.status FROM events e"
_NO_TARGETS = EventTargets()


def event_of(row: tuple[Any, ...]) -> DrEvent:
    event = DrEvent.model_validate_json(row[0])
    event.status = EventStatus(row[1])
    return event


def delivery_of(r: tuple[Any, ...]) -> EventDelivery:
    return EventDelivery(
        event_id=r[0], ven_id=r[1], aggregator_id=r[2], account_id=r[3],
        device_ids=json.loads(r[5]), resource_ids=json.loads(r[6]), delivered_mod=r[7],
        delivered_at=at_us(r[8]), opt=r[9], opt_mod=r[10], opt_at=at_us(r[11]),
        resource_opts=json.loads(r[12]),
    )


def event_scope(scope: Scope) -> tuple[str, tuple[Any, ...]]:
    """The port's event visibility rule on alias ``e`` (see the module docstring)."""
    if scope.is_service:
        return "1=1", ()
    if scope.role == "aggregator" and scope.aggregator_id is not None:
        return (
            "(e.aggregator_id=? OR EXISTS (SELECT 1 FROM event_deliveries s "
            "WHERE s.aggregator_id=? AND s.event_id=e.event_id))",
            (scope.aggregator_id, scope.aggregator_id),
        )
    if scope.role == "prosumer" and scope.account_id is not None:
        return (
            "EXISTS (SELECT 1 FROM event_deliveries s WHERE s.account_id=? "
            "AND s.event_id=e.event_id)",
            (scope.account_id,),
        )
    return "0=1", ()


# --- reads ---------------------------------------------------------------------------


def get_event(db: sqlite3.Connection, event_id: str, scope: Scope) -> DrEvent | None:
    where, params = event_scope(scope)
    row = db.execute(f"{EVENT_SELECT} WHERE e.event_id=? AND {where}",
                     (event_id, *params)).fetchone()
    return event_of(row) if row else None


def list_events(db: sqlite3.Connection, query: EventQuery, scope: Scope) -> list[DrEvent]:
    where, scope_params = event_scope(scope)
    clauses, params = [where], list(scope_params)
    if query.status:
        clauses.append(f"e.status IN ({','.join('?' * len(query.status))})")
        params += [EventStatus(s).value for s in query.status]
    if query.ven_id is not None:
        clauses.append("EXISTS (SELECT 1 FROM event_deliveries v WHERE v.event_id=e.event_id "
                       "AND v.ven_id=?)")
        params.append(query.ven_id)
    if query.device_id is not None:
        # the DER's VEN narrows it to one delivery per event (primary key), then its list
        clauses.append(
            "EXISTS (SELECT 1 FROM event_deliveries v, json_each(v.device_ids) j "
            "WHERE v.event_id=e.event_id AND v.ven_id=(SELECT ven_id FROM ders "
            "WHERE device_id=?) AND j.value=?)")
        params += [query.device_id, query.device_id]
    if query.starts_after is not None:
        clauses.append("e.dtstart_us>=?")
        params.append(us(query.starts_after))
    if query.starts_before is not None:
        clauses.append("e.dtstart_us<?")
        params.append(us(query.starts_before))
    if query.aggregator_id is not None:
        clauses.append("e.aggregator_id=?")
        params.append(query.aggregator_id)
    if query.program is not None:
        clauses.append("e.program=?")
        params.append(query.program)
    if query.after_event_id is not None:
        clauses.append("e.event_id>?")
        params.append(query.after_event_id)
    sql = f"{EVENT_SELECT} WHERE {' AND '.join(clauses)} ORDER BY e.event_id LIMIT ?"
    return [event_of(r) for r in db.execute(sql, (*params, query.limit)).fetchall()]


def open_events(db: sqlite3.Connection) -> list[DrEvent]:
    rows = db.execute(f"{EVENT_SELECT} WHERE e.status NOT IN (?, ?) ORDER BY e.event_id",
                      FINAL).fetchall()
    return [event_of(r) for r in rows]


def deliveries_of_event(db: sqlite3.Connection, event_id: str, scope: Scope
                        ) -> list[EventDelivery]:
    where, params = scope_where(scope)
    rows = db.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM event_deliveries WHERE event_id=? AND {where} "
        "ORDER BY ven_id", (event_id, *params)).fetchall()
    return [delivery_of(r) for r in rows]


def events_for_ven(db: sqlite3.Connection, ven_id: str, now: datetime
                   ) -> list[tuple[DrEvent, EventDelivery]]:
    """One query: the VEN's deliveries still current (index range), joined to events."""
    t = us(now)
    rows = db.execute(
        f"SELECT e.doc, e.status, {_D_COLUMNS} FROM event_deliveries d "
        "JOIN events e ON e.event_id=d.event_id "
        "WHERE d.ven_id=? AND (d.current_until_us IS NULL OR d.current_until_us>?) "
        "AND (e.current_until_us IS NULL OR e.current_until_us>?) ORDER BY d.event_id",
        (ven_id, t, t)).fetchall()
    return [(event_of(r[:2]), delivery_of(r[2:])) for r in rows]


def get_delivery(db: sqlite3.Connection, event_id: str, ven_id: str) -> EventDelivery | None:
    row = db.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM event_deliveries WHERE event_id=? AND ven_id=?",
        (event_id, ven_id)).fetchone()
    return delivery_of(row) if row else None


# --- target resolution -----------------------------------------------------------------

_IN = "IN (SELECT value FROM json_each(?))"  # one parameter for any number of ids
# ids first, then a primary-key / unique-index probe each (CROSS JOIN fixes the order:
# else the planner may walk the whole tenant index and test each row against the list)
_BY_IDS = "FROM json_each(?) AS ids CROSS JOIN {table} ON {table}.{column}=ids.value"


def resolve_targets(db: sqlite3.Connection, targets: EventTargets, scope: Scope
                    ) -> list[EventDelivery]:
    """One delivery per VEN (ven_id order; DERs in resource_id order), scope inside."""
    where, params = scope_where(scope)
    vens: dict[str, tuple[str | None, str | None]] = {}
    if targets.ven_ids:
        for v, agg, acc in db.execute(
                "SELECT ven_id, aggregator_id, account_id "
                f"{_BY_IDS.format(table='vens', column='ven_id')} WHERE {where}",
                (json.dumps(targets.ven_ids), *params)):
            vens[v] = (agg, acc)
    found: dict[str, tuple[str, str, str | None, str | None]] = {}
    columns = "SELECT ders.device_id, ders.ven_id, resource_id, ders.aggregator_id, " \
        "ders.account_id"
    select = f"{columns} FROM ders"

    def add(rows: Any) -> None:
        for device_id, v, resource_id, agg, acc in rows:
            found[device_id] = (v, resource_id, agg, acc)

    if targets.device_ids:
        add(db.execute(
            f"{columns} {_BY_IDS.format(table='ders', column='device_id')} WHERE {where}",
            (json.dumps(targets.device_ids), *params)))
    if vens:
        add(db.execute(
            f"{columns} {_BY_IDS.format(table='ders', column='ven_id')} WHERE {where}",
            (json.dumps(sorted(vens)), *params)))
    for name in targets.groups:
        group = _target_group(db, name, scope)
        if group is not None:
            try:
                member, member_params = groups.member_where(group, scope)
            except ValidationError:
                continue  # a group saved under older rules: it names nothing
            add(db.execute(f"{select} WHERE {member}", member_params))
    missing = sorted({v for v, *_ in found.values()} - vens.keys())
    if missing:  # the VENs of DERs targeted directly or by group (the DER is visible)
        for v, agg, acc in db.execute(
                f"SELECT ven_id, aggregator_id, account_id FROM vens WHERE ven_id {_IN}",
                (json.dumps(missing),)):
            vens[v] = (agg, acc)
    return build_deliveries(vens, found)


def _target_group(db: sqlite3.Connection, name: str, scope: Scope) -> Group | None:
    """The group an event target names (registry.port.groups.target_name), or its id."""
    ref = target_name(name, scope)
    group = None
    if ref is not None:
        owner, group_name = ref
        if owner is not None and group_name == DEFAULT_GROUP:
            return default_group(owner)
        group = groups.group_named(db, owner, group_name, scope)
    return group or groups.get_group(db, name, scope)


# --- inside Store.commit's transaction ------------------------------------------------

_UPSERT_EVENT = (
    "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(event_id) DO UPDATE SET "
    "modification_number=excluded.modification_number, aggregator_id=excluded.aggregator_id, "
    "program=excluded.program, status=excluded.status, dtstart_us=excluded.dtstart_us, "
    "current_until_us=excluded.current_until_us, doc=excluded.doc, targets=excluded.targets"
)
_UPSERT_DELIVERY = (
    f"INSERT INTO event_deliveries ({DELIVERY_COLUMNS}) VALUES "
    "(?,?,?,?,(SELECT current_until_us FROM events WHERE event_id=?),?,?,?,?,?,?,?,?) "
    "ON CONFLICT(event_id, ven_id) DO UPDATE SET aggregator_id=excluded.aggregator_id, "
    "account_id=excluded.account_id, current_until_us=excluded.current_until_us, "
    "device_ids=excluded.device_ids, resource_ids=excluded.resource_ids"
)  # what was delivered and answered is only written by `delivered` and `opt_answers`, so
# a re-targeting commit never overwrites an answer that arrived meanwhile


def event_row(e: DrEvent) -> tuple[Any, ...]:
    return (e.event_id, e.modification_number, e.aggregator_id, e.program, e.status.value,
            us(e.dtstart), us(e.current_until),
            e.model_copy(update={"targets": _NO_TARGETS}).model_dump_json(),
            e.targets.model_dump_json())


def delivery_row(d: EventDelivery) -> tuple[Any, ...]:
    return (d.event_id, d.ven_id, d.aggregator_id, d.account_id, d.event_id,
            json.dumps(d.device_ids), json.dumps(d.resource_ids), d.delivered_mod,
            us(d.delivered_at), d.opt.value if d.opt else None, d.opt_mod, us(d.opt_at),
            json.dumps({r: OptType(o).value for r, o in d.resource_opts.items()}))


def check_expectations(db: sqlite3.Connection, batch: Batch) -> None:
    """event_expect and event_status: a stale one fails the whole commit (Conflict)."""
    for event_id, expected in batch.event_expect:
        row = db.execute("SELECT modification_number FROM events WHERE event_id=?",
                         (event_id,)).fetchone()
        if expected is None and row is not None:
            raise Conflict(f"event {event_id} exists already")
        if expected is not None and (row is None or row[0] != expected):
            raise Conflict(f"event {event_id} is not at modification {expected}")
    for event_id, old, new in batch.event_status:
        if db.execute(
            "UPDATE events SET status=?, doc=json_set(doc, '$.status', ?) "
            "WHERE event_id=? AND status=?",
            (new.value, new.value, event_id, EventStatus(old).value),
        ).rowcount != 1:
            raise Conflict(f"status of event {event_id} is no longer {EventStatus(old).value}")


def write_events(db: sqlite3.Connection, batch: Batch) -> None:
    """Everything of a batch about events, after check_expectations."""
    if batch.events:
        db.executemany(_UPSERT_EVENT, [event_row(e) for e in batch.events])
        db.executemany(  # a modified or cancelled event: its deliveries follow
            "UPDATE event_deliveries SET current_until_us=? WHERE event_id=?",
            [(us(e.current_until), e.event_id) for e in batch.events])
    if batch.deliveries:
        db.executemany(_UPSERT_DELIVERY, [
            delivery_row(d) for d in owned_deliveries(batch.deliveries, batch.events)])
    if batch.delete_deliveries:
        db.executemany("DELETE FROM event_deliveries WHERE event_id=? AND ven_id=?",
                       batch.delete_deliveries)
    if batch.delivered:
        db.executemany(
            "UPDATE event_deliveries SET delivered_mod=?, delivered_us=? "
            "WHERE event_id=? AND ven_id=?",
            [(mod, us(at), e, v) for e, v, mod, at in batch.delivered])
    for a in batch.opt_answers:
        # in place, one statement each: a concurrent answer for another resource stays
        if a.resource_ids:
            patch = json.dumps(dict.fromkeys(a.resource_ids, OptType(a.opt).value))
            db.execute("UPDATE event_deliveries SET resource_opts=json_patch(resource_opts, ?) "
                       "WHERE event_id=? AND ven_id=?", (patch, a.event_id, a.ven_id))
        else:
            db.execute("UPDATE event_deliveries SET opt=?, opt_mod=?, opt_us=? "
                       "WHERE event_id=? AND ven_id=?",
                       (OptType(a.opt).value, a.modification_number, us(a.at), a.event_id,
                        a.ven_id))
    if batch.distribute_to:
        # the partial unique index outbox_distribute_marker keeps one pending per VEN
        now = time.time()
        db.executemany(
            "INSERT OR IGNORE INTO outbox (ven_id, kind, body, created_at) VALUES (?,?,'',?)",
            [(v, DISTRIBUTE_MARKER, now) for v in dict.fromkeys(batch.distribute_to)])
