"""Export and exact import on MongoDB: every kind's collection, sort order and parser, and
the idempotent restore operations of registry.transfer's records."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from pydantic import BaseModel
from pymongo import InsertOne, ReplaceOne

from registry.models import Der, LogEntry, OutboxMessage, ReportRequestRecord, ReportSpec, Ven
from registry.mongo import dispatches, events, groups, opts, views
from registry.mongo.conn import TRANSIENT, Doc, MongoConn
from registry.mongo.docs import (
    der_doc,
    der_of,
    log_doc,
    log_of,
    outbox_doc,
    outbox_of,
    request_of,
    request_op,
    spec_of,
    spec_op,
    ven_doc,
    ven_of,
)
from registry.port import Batch, StoreUnavailable
from registry.port.batch import DISTRIBUTE_MARKER

KINDS = ("ven", "der", "report_spec", "report_request", "group", "group_member",
         "report_subscription",
         "event", "event_delivery", "opt_schedule", "dispatch", "dispatch_member", "outbox",
         "log")
# restored through the commit's own writes (document shapes, current_until, tenants)
DR_KINDS = {"event": "events", "event_delivery": "deliveries", "opt_schedule": "opts"}

KIND_READ: dict[str, tuple[str, list[tuple[str, int]], Callable[[Doc], BaseModel]]] = {
    "ven": ("vens", [("ven_id", 1)], ven_of),
    "der": ("ders", [("ven_id", 1), ("resource_id", 1)], der_of),
    "report_spec": ("report_specs", [("ven_id", 1), ("report_specifier_id", 1)], spec_of),
    "report_request": ("report_requests", [("ord", 1)], request_of),
    "outbox": ("outbox", [("seq", 1)], outbox_of),
    "log": ("log", [("seq", 1)], log_of),
    "group": ("der_groups", [("owner", 1), ("name", 1)], groups.group_of),
    "group_member": ("der_group_members", [("group_id", 1), ("device_id", 1)],
                     groups.static_of),
    "report_subscription": ("report_subscriptions", [("ord", 1), ("_id", 1)], views.sub_of),
    "event": ("events", [("event_id", 1)], events.event_of),
    "event_delivery": ("event_deliveries", [("event_id", 1), ("ven_id", 1)],
                       events.delivery_of),
    "opt_schedule": ("opt_schedules", [("ven_id", 1), ("opt_id", 1)], opts.opt_of),
    "dispatch": ("group_dispatches", [("_id", 1)], dispatches.dispatch_of),
    "dispatch_member": ("group_dispatch_members", [("dispatch_id", 1), ("device_id", 1)],
                        dispatches.member_of),
}


async def iter_all(c: MongoConn, kind: str) -> AsyncIterator[BaseModel]:
    """Stream every record of one kind (see registry.transfer), in a stable order."""
    coll, sort, parse = KIND_READ[kind]
    cursor = c.col(coll).find({}).sort(sort).batch_size(1000)
    try:
        async for doc in cursor:
            yield parse(doc)
    except TRANSIENT as exc:
        raise StoreUnavailable(f"mongodb unavailable: {exc}") from exc
    finally:
        await cursor.close()


async def import_records(c: MongoConn, kind: str, records: list[BaseModel]) -> int:
    """Exact, idempotent restore of dumped records (keeps device_ids and seqs).

    Used by registry.transfer when the target is MongoDB: replaces by natural key, and
    outbox/log entries are inserted under their own seq (already there: skipped).
    """
    if not records:
        return 0
    if kind in DR_KINDS:
        batch = Batch(**{DR_KINDS[kind]: list(records)})  # type: ignore[arg-type]
        if batch.opts:
            await opts.write_opts(c, batch, None)
        await events.write_shares(c, batch, None)
        await events.write_event_docs(c, batch, None)
        return len(records)
    coll, ops = import_ops(kind, records)
    await c.bulk(None, coll, ops)
    if kind in ("outbox", "log"):
        top = max(int(getattr(r, "seq", 0) or 0) for r in records)
        await c.retry(lambda: c.col("counters").update_one(
            {"_id": kind}, {"$max": {"seq": top}}, upsert=True))
    return len(records)


def import_ops(kind: str, records: Iterable[BaseModel]) -> tuple[str, list[Any]]:
    if kind in ("group", "group_member"):
        return groups.import_ops(kind, list(records))
    if kind == "report_subscription":
        return views.import_ops(kind, list(records))
    if kind in ("dispatch", "dispatch_member"):
        return dispatches.import_ops(kind, list(records))
    if kind == "ven":
        return "vens", [ReplaceOne({"_id": r.ven_id}, ven_doc(r), upsert=True)
                        for r in records if isinstance(r, Ven)]
    if kind == "der":
        return "ders", [ReplaceOne({"_id": r.device_id}, der_doc(r), upsert=True)
                        for r in records if isinstance(r, Der)]
    if kind == "report_spec":
        return "report_specs", [spec_op(r) for r in records if isinstance(r, ReportSpec)]
    if kind == "report_request":
        return "report_requests", [
            request_op(r) for r in records if isinstance(r, ReportRequestRecord)]
    if kind == "outbox":
        return "outbox", [InsertOne(_outbox_doc(r))
                          for r in records if isinstance(r, OutboxMessage)]
    if kind == "log":
        return "log", [InsertOne(log_doc(r)) for r in records if isinstance(r, LogEntry)]
    raise ValueError(f"unknown kind {kind!r}")


def _outbox_doc(m: OutboxMessage) -> Doc:
    doc = outbox_doc(m, m.seq or 0)
    if m.kind == DISTRIBUTE_MARKER and not m.body:  # still at most one per VEN
        doc["_id"] = events.marker_id(m.ven_id)
    return doc
