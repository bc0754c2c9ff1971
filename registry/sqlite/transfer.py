"""Export on SQLite: the statement reading each kind in a stable order, and the row parser
(SqliteStore.iter_all streams them cursor by cursor)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from registry.events import OptSchedule
from registry.group_dispatch import DispatchMember, GroupDispatch
from registry.group_model import Group, MemberKind, StaticMember
from registry.models import LogEntry, OutboxMessage, ReportSpec, ReportSubscription
from registry.sqlite.events import DELIVERY_COLUMNS, EVENT_SELECT, delivery_of, event_of
from registry.sqlite.rows import DER_COLUMNS, VEN_SELECT, der_of, dt, report_request, ven_of

ITER_SQL = {
    "ven": f"{VEN_SELECT} ORDER BY ven_id",
    "der": f"SELECT {DER_COLUMNS} FROM ders ORDER BY ven_id, resource_id",
    "report_spec": "SELECT doc FROM report_specs ORDER BY ven_id, report_specifier_id",
    "report_request": "SELECT state, doc FROM report_requests ORDER BY rowid",
    "group": "SELECT doc FROM der_groups ORDER BY owner, name",
    "group_member": "SELECT group_id, device_id, kind FROM der_group_members "
    "ORDER BY group_id, device_id",
    "report_subscription": "SELECT doc FROM report_subscriptions ORDER BY rowid",
    "event": f"{EVENT_SELECT} ORDER BY e.event_id",
    "event_delivery": f"SELECT {DELIVERY_COLUMNS} FROM event_deliveries ORDER BY event_id, ven_id",
    "opt_schedule": "SELECT doc FROM opt_schedules ORDER BY ven_id, opt_id",
    "dispatch": "SELECT doc FROM group_dispatches ORDER BY dispatch_id",
    "dispatch_member": "SELECT doc FROM group_dispatch_members ORDER BY dispatch_id, device_id",
    "outbox": "SELECT seq, ven_id, kind, body, created_at FROM outbox ORDER BY seq",
    "log": "SELECT seq, at, kind, actor, ven_id, device_id, aggregator_id, account_id, data "
    "FROM log ORDER BY seq",
}


def parse(kind: str, row: tuple[Any, ...]) -> BaseModel:
    if kind == "ven":
        ven = ven_of(row)
        assert ven is not None
        return ven
    if kind == "der":
        return der_of(row)
    if kind == "report_spec":
        return ReportSpec.model_validate_json(row[0])
    if kind == "report_request":
        return report_request((row[0], row[1]))
    if kind == "group":
        return Group.model_validate_json(row[0])
    if kind == "group_member":
        return StaticMember(group_id=row[0], device_id=row[1], kind=MemberKind(row[2]))
    if kind == "report_subscription":
        return ReportSubscription.model_validate_json(row[0])
    if kind == "event":
        return event_of(row)
    if kind == "event_delivery":
        return delivery_of(row)
    if kind == "opt_schedule":
        return OptSchedule.model_validate_json(row[0])
    if kind == "dispatch":
        return GroupDispatch.model_validate_json(row[0])
    if kind == "dispatch_member":
        return DispatchMember.model_validate_json(row[0])
    if kind == "outbox":
        return OutboxMessage(seq=row[0], ven_id=row[1], kind=row[2], body=row[3],
                             created_at=dt(row[4]))
    return LogEntry(seq=row[0], at=dt(row[1]), kind=row[2], actor=row[3], ven_id=row[4],
                    device_id=row[5], aggregator_id=row[6], account_id=row[7],
                    data=json.loads(row[8]))


def iter_table(db: sqlite3.Connection, table: str) -> Iterator[tuple[Any, ...]]:
    return db.execute(f"SELECT * FROM {table}")
