"""The event log on MongoDB: appends under reserved sequence numbers, tails that never
skip an entry still being written, and scoped queries (see registry.mongo.store)."""

from __future__ import annotations

import time

from pymongo import InsertOne

from registry.discovery import LogQuery
from registry.models import LogEntry
from registry.mongo.conn import Doc, MongoConn, Session
from registry.mongo.docs import log_doc, log_of
from registry.mongo.scope import and_, scope_filter
from registry.port import Scope


async def read_log(c: MongoConn, after: int, limit: int, ven_id: str | None) -> list[LogEntry]:
    if limit == 0:
        return []
    flt: Doc = {"seq": {"$gt": after}}
    if ven_id is not None:
        flt["ven_id"] = ven_id
    docs = await c.retry(
        lambda: c.col("log").find(flt).sort("seq", 1).limit(max(limit, 0)).to_list()
    )
    if docs and not c.transactions:
        horizon = await visible_horizon(c, after, docs[-1]["seq"])
        docs = [d for d in docs if d["seq"] <= horizon]
    return [log_of(d) for d in docs]


async def visible_horizon(c: MongoConn, after: int, upto: int) -> int:
    """Highest seq <= upto with no hole (of a writer still at work) before it."""
    rng = {"seq": {"$gt": after, "$lte": upto}}
    count = await c.retry(lambda: c.col("log").count_documents(rng))
    if count == upto - after:
        return upto
    rows = await c.retry(
        lambda: c.col("log").find(rng, {"seq": 1, "written": 1}).sort("seq", 1).to_list()
    )
    expected, now = after + 1, time.time()
    for row in rows:
        if row["seq"] != expected and now - row.get("written", 0) < c.hole_grace_s:
            return expected - 1
        expected = row["seq"] + 1
    return upto


async def last_seq(c: MongoConn) -> int:
    doc = await c.retry(lambda: c.col("log").find_one({}, sort=[("seq", -1)]))
    return int(doc["seq"]) if doc else 0


async def find_log(c: MongoConn, query: LogQuery, scope: Scope) -> list[LogEntry]:
    parts: list[Doc] = [{"seq": {"$gt": query.after}}, scope_filter(scope)]
    if query.kind:
        parts.append({"kind": {"$in": list(query.kind)}})
    for name in ("ven_id", "device_id"):
        value = getattr(query, name)
        if value is not None:
            parts.append({name: value})
    flt = and_(parts)
    docs = await c.retry(
        lambda: c.col("log").find(flt).sort("seq", 1).limit(query.limit).to_list()
    )
    if docs and not c.transactions:
        # as read_log: never past a hole a writer may still fill (tails miss nothing)
        horizon = await visible_horizon(c, query.after, docs[-1]["seq"])
        docs = [d for d in docs if d["seq"] <= horizon]
    return [log_of(d) for d in docs]


# --- inside a unit of work -------------------------------------------------------------


async def append_log(c: MongoConn, entries: list[LogEntry], s: Session) -> list[LogEntry]:
    if not entries:
        return []
    first = await c.reserve("log", len(entries), s)
    out = [e.model_copy(update={"seq": first + i}) for i, e in enumerate(entries)]
    await c.bulk(s, "log", [InsertOne(log_doc(e)) for e in out])
    return out
