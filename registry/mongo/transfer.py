"""Export and exact import on MongoDB: every kind's collection, sort order and parser, and
the idempotent restore operations of registry.transfer's records."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from pydantic import BaseModel
from pymongo import InsertOne, ReplaceOne

from registry.models import Der, LogEntry, OutboxMessage, ReportRequestRecord, ReportSpec, Ven
from registry.mongo import views
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
from registry.port import StoreUnavailable

KINDS = ("ven", "der", "report_spec", "report_request", "view", "report_subscription",
         "outbox", "log")

KIND_READ: dict[str, tuple[str, list[tuple[str, int]], Callable[[Doc], BaseModel]]] = {
    "ven": ("vens", [("ven_id", 1)], ven_of),
    "der": ("ders", [("ven_id", 1), ("resource_id", 1)], der_of),
    "report_spec": ("report_specs", [("ven_id", 1), ("report_specifier_id", 1)], spec_of),
    "report_request": ("report_requests", [("ord", 1)], request_of),
    "outbox": ("outbox", [("seq", 1)], outbox_of),
    "log": ("log", [("seq", 1)], log_of),
    "view": ("views", [("aggregator_id", 1), ("name", 1)], views.view_of),
    "report_subscription": ("report_subscriptions", [("ord", 1), ("_id", 1)], views.sub_of),
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
    coll, ops = import_ops(kind, records)
    await c.bulk(None, coll, ops)
    if kind in ("outbox", "log"):
        top = max(int(getattr(r, "seq", 0) or 0) for r in records)
        await c.retry(lambda: c.col("counters").update_one(
            {"_id": kind}, {"$max": {"seq": top}}, upsert=True))
    return len(records)


def import_ops(kind: str, records: Iterable[BaseModel]) -> tuple[str, list[Any]]:
    if kind in ("view", "report_subscription"):
        return views.import_ops(kind, list(records))
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
        return "outbox", [InsertOne(outbox_doc(r, r.seq or 0))
                          for r in records if isinstance(r, OutboxMessage)]
    if kind == "log":
        return "log", [InsertOne(log_doc(r)) for r in records if isinstance(r, LogEntry)]
    raise ValueError(f"unknown kind {kind!r}")
