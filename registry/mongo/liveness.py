"""Liveness on MongoDB: contacts (touch), coming online, the stale / offline sweep.

Every transition is an update whose filter names the old state, so of several processes
only one sees it happen and logs it.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument, UpdateOne

from registry.models import Liveness, LivenessChange
from registry.mongo.conn import Doc, MongoConn, Session
from registry.mongo.leases import check_fence, shard_filter
from registry.mongo.log import append_log
from registry.port import liveness_entry
from registry.port.leases import Fencing, Shard

FENCE_EVERY = 100  # without transactions: transitions between two lease checks

_BEFORE_FIELDS = {"liveness": 1, "aggregator_id": 1, "account_id": 1}
_SWEEP_FIELDS = {"liveness": 1, "last_seen": 1, "poll_freq_s": 1, "aggregator_id": 1,
                 "account_id": 1}


async def touch(c: MongoConn, contacts: dict[str, datetime]) -> None:
    if not contacts:
        return
    ops = [UpdateOne({"_id": v}, {"$max": {"last_seen": t.timestamp()}})
           for v, t in contacts.items()]
    await c.bulk(None, "vens", ops)


async def mark_online(
    c: MongoConn, ven_id: str, now: datetime, s: Session
) -> LivenessChange | None:
    """mark_online inside the caller's unit of work."""
    t = now.timestamp()
    # conditional: of two processes, only one sees the old state and logs the change
    before = await c.do(s, lambda: c.col("vens").find_one_and_update(
        {"_id": ven_id, "liveness": {"$ne": Liveness.ONLINE.value}},
        {"$set": {"liveness": Liveness.ONLINE.value, "last_seen": t, "offline_since": None}},
        projection=_BEFORE_FIELDS, return_document=ReturnDocument.BEFORE, session=s))
    if before is None:
        await c.do(s, lambda: c.col("vens").update_one(
            {"_id": ven_id}, {"$max": {"last_seen": t}}, session=s))
        return None
    ders = await _set_der_liveness(c, ven_id, Liveness.ONLINE, s)
    change = LivenessChange(
        ven_id=ven_id, old=Liveness(before["liveness"]), new=Liveness.ONLINE, ders=ders
    )
    entry = liveness_entry(change, now, before.get("aggregator_id"), before.get("account_id"))
    await append_log(c, [entry], s)
    return change


async def _set_der_liveness(c: MongoConn, ven_id: str, new: Liveness, s: Session) -> int:
    """DERs follow their VEN, except those that reported themselves offline."""
    await c.do(s, lambda: c.col("ders").update_many(
        {"ven_id": ven_id, "reported_online": 0},
        {"$set": {"liveness": Liveness.OFFLINE.value}}, session=s))
    await c.do(s, lambda: c.col("ders").update_many(
        # not {"$ne": 0}: nx-27017's update path drops null there (SQL NULL != 0)
        {"ven_id": ven_id, "reported_online": {"$in": [None, 1]}},
        {"$set": {"liveness": new.value}}, session=s))
    # counted, not taken from matched_count: nx-27017 reports only modified documents
    return await c.do(s, lambda: c.col("ders").count_documents({"ven_id": ven_id}, session=s))


async def sweep_liveness(
    c: MongoConn, now: datetime, stale_after_polls: float, offline_after_polls: float,
    shard: Shard | None = None, fence: Fencing = None,
) -> list[LivenessChange]:
    """With a shard only its VENs; with a fence the lease is checked in each transition's
    transaction, or (no transactions) once per FENCE_EVERY transitions."""
    t = now.timestamp()
    flt: Doc = {
        "liveness": {"$ne": Liveness.OFFLINE.value},
        "$expr": {"$lt": [
            {"$ifNull": ["$last_seen", 0]},
            {"$subtract": [t, {"$multiply": ["$poll_freq_s", stale_after_polls]}]},
        ]},
    }
    if shard is not None and shard.count > 1:
        # in $and: nx-27017 drops the other conditions of a document that has $expr
        flt = {"$and": [shard_filter(shard), flt]}
    rows = await c.retry(lambda: c.col("vens").find(flt, _SWEEP_FIELDS).to_list())
    changes = []
    done = 0
    for row in rows:
        last = row.get("last_seen") or 0
        is_offline = last < t - row["poll_freq_s"] * offline_after_polls
        new = Liveness.OFFLINE if is_offline else Liveness.STALE
        if new.value == row["liveness"]:
            continue
        if fence is not None and not c.transactions and done % FENCE_EVERY == 0:
            await check_fence(c, fence, None)
        done += 1
        change = await c.unit(lambda s, r=row, n=new: _fenced_transition(
            c, r, n, now, s, fence))
        if change is not None:
            changes.append(change)
    return changes


async def _fenced_transition(
    c: MongoConn, row: Doc, new: Liveness, now: datetime, s: Session, fence: Fencing
) -> LivenessChange | None:
    if s is not None:
        await check_fence(c, fence, s)
    return await _transition(c, row, new, now, s)


async def _transition(
    c: MongoConn, row: Doc, new: Liveness, now: datetime, s: Session
) -> LivenessChange | None:
    """Apply one sweep transition if nobody changed the VEN since we read it."""
    t = now.timestamp()
    res = await c.do(s, lambda: c.col("vens").update_one(
        {"_id": row["_id"], "liveness": row["liveness"], "last_seen": row.get("last_seen")},
        {"$set": {"liveness": new.value,
                  "offline_since": t if new == Liveness.OFFLINE else None}},
        session=s))
    if res.modified_count != 1:
        return None  # another sweeper, a mark_online or a touch got there first
    ders = await _set_der_liveness(c, row["_id"], new, s)
    change = LivenessChange(ven_id=row["_id"], old=Liveness(row["liveness"]), new=new,
                            ders=ders)
    entry = liveness_entry(change, now, row.get("aggregator_id"), row.get("account_id"))
    await append_log(c, [entry], s)
    return change
