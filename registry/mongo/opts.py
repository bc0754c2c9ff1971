"""Opt schedules on MongoDB (the twin of registry.sqlite.opts).

``opt_schedules``: _id = JSON [ven_id, opt_id], the model's JSON. ``opt_windows``: one
document per window of a schedule that is not cancelled (_id = JSON [ven_id, opt_id,
i]), carrying what ``opts_covering`` and discovery's ``available_at`` filter on (type,
tenant, the schedule's DERs, start/end as epoch microseconds), so both are one range
read. An upsert writes the schedule, then its windows 0..n-1, then deletes the windows
from n on: every step is idempotent, and a crash in between leaves the old windows (a
re-sent opt rewrites them).
"""

from __future__ import annotations

import json
from datetime import datetime

from pymongo import ReplaceOne

from registry.events import OptSchedule, OptType
from registry.mongo.conn import Doc, MongoConn, Session
from registry.mongo.docs import as_json, epoch_us
from registry.mongo.scope import and_, scope_filter
from registry.port import Batch, Scope


def opt_id_of(ven_id: str, opt_id: str) -> str:
    return json.dumps([ven_id, opt_id])


def opt_of(doc: Doc) -> OptSchedule:
    return OptSchedule.model_validate({k: v for k, v in doc.items() if k != "_id"})


def _covering(at: datetime) -> Doc:
    t = epoch_us(at)
    return {"end_us": {"$gt": t}, "start_us": {"$lte": t}}


async def opts_of_ven(c: MongoConn, ven_id: str) -> list[OptSchedule]:
    docs = await c.retry(lambda: c.col("opt_schedules").find({"ven_id": ven_id})
                         .sort("opt_id", 1).to_list())
    return [opt_of(d) for d in docs]


async def get_opt(c: MongoConn, ven_id: str, opt_id: str) -> OptSchedule | None:
    doc = await c.retry(lambda: c.col("opt_schedules").find_one(
        {"_id": opt_id_of(ven_id, opt_id)}))
    return opt_of(doc) if doc else None


async def opts_covering(c: MongoConn, at: datetime, scope: Scope,
                        opt_type: OptType | None) -> list[OptSchedule]:
    parts = [scope_filter(scope), _covering(at)]
    if opt_type is not None:
        parts.append({"opt_type": OptType(opt_type).value})
    windows = await c.retry(lambda: c.col("opt_windows").find(
        and_(parts), {"ven_id": 1, "opt_id": 1}).to_list())
    ids = sorted({opt_id_of(w["ven_id"], w["opt_id"]) for w in windows})
    if not ids:
        return []
    docs = await c.retry(lambda: c.col("opt_schedules").find(
        {"_id": {"$in": ids}, "cancelled_at": {"$in": [None]}}).to_list())
    return sorted((opt_of(d) for d in docs), key=lambda o: (o.ven_id, o.opt_id))


async def opted_out(c: MongoConn, at: datetime) -> Doc:
    """Discovery's available_at: the DERs under an optOut window at ``at`` left out
    (the covering schedules are read first; then their VENs / DERs are excluded)."""
    windows = await c.retry(lambda: c.col("opt_windows").find(
        {"opt_type": OptType.OUT.value, **_covering(at)},
        {"ven_id": 1, "all_resources": 1, "device_ids": 1}).to_list())
    whole = sorted({w["ven_id"] for w in windows if w.get("all_resources")})
    some = sorted({d for w in windows if not w.get("all_resources")
                   for d in w.get("device_ids") or []})
    parts: list[Doc] = []
    if whole:
        parts.append({"ven_id": {"$nin": whole}})
    if some:
        parts.append({"device_id": {"$nin": some}})
    return and_(parts)


# --- inside Store.commit ---------------------------------------------------------------


def _window_docs(o: OptSchedule) -> list[Doc]:
    if o.cancelled_at is not None:
        return []  # a cancelled schedule covers nothing
    return [{"_id": json.dumps([o.ven_id, o.opt_id, i]), "ven_id": o.ven_id,
             "opt_id": o.opt_id, "i": i, "opt_type": OptType(o.opt_type).value,
             "aggregator_id": o.aggregator_id, "account_id": o.account_id,
             "all_resources": not o.resource_ids, "device_ids": list(o.device_ids),
             "start_us": epoch_us(w.start), "end_us": epoch_us(w.end)}
            for i, w in enumerate(o.windows)]


async def write_opts(c: MongoConn, batch: Batch, s: Session) -> None:
    """Upsert on (ven_id, opt_id); the schedule's windows are replaced after it."""
    await c.bulk(s, "opt_schedules", [
        ReplaceOne({"_id": opt_id_of(o.ven_id, o.opt_id)},
                   {**as_json(o), "_id": opt_id_of(o.ven_id, o.opt_id)}, upsert=True)
        for o in batch.opts])
    for o in batch.opts:
        docs = _window_docs(o)
        if docs:
            await c.bulk(s, "opt_windows", [ReplaceOne({"_id": d["_id"]}, d, upsert=True)
                                            for d in docs])
        n = len(docs)
        await c.do(s, lambda o=o, n=n: c.col("opt_windows").delete_many(
            {"ven_id": o.ven_id, "opt_id": o.opt_id, "i": {"$gte": n}}, session=s))
