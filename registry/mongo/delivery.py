"""Delivery targets and per-VEN push leases on MongoDB (registry.port.delivery).

``delivery_targets``: _id = venID, transport, address. ``push_leases``: _id = venID,
holder, token, until (epoch seconds), attempts. Taking a lease is one
``find_one_and_update`` whose filter requires an expired lease, with ``upsert``: when a
live lease exists the upsert collides on _id (DuplicateKeyError) and the caller gets
None, so of two processes exactly one wins. ``ack_delivered`` checks the token, then
deletes the message by (venID, seq); a holder that lost its lease between the two steps
removes a message it did deliver (its successor's ack then finds it gone).
"""

from __future__ import annotations

from pymongo import DeleteOne, ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from registry.models import OutboxMessage
from registry.mongo.conn import Doc, MongoConn, Session
from registry.mongo.docs import outbox_of
from registry.port import Batch
from registry.port.delivery import DeliveryTarget, PushLease

_CHUNK = 1000


def _target(doc: Doc) -> DeliveryTarget:
    return DeliveryTarget(doc["_id"], doc["transport"], doc["address"])


def _lease(doc: Doc) -> PushLease:
    return PushLease(doc["_id"], doc["holder"], int(doc["token"]), float(doc["until"]),
                 int(doc.get("attempts", 0)))


async def delivery_candidates(
    c: MongoConn, transport: str, now: float, limit: int
) -> list[DeliveryTarget]:
    docs = await c.retry(lambda: c.col("delivery_targets").find(
        {"transport": transport}).to_list())
    found: list[DeliveryTarget] = []
    for i in range(0, len(docs), _CHUNK):
        chunk = {d["_id"]: d for d in docs[i:i + _CHUNK]}
        ids = list(chunk)
        found_ids = await c.retry(lambda x=ids: c.col("outbox").distinct(
            "ven_id", {"ven_id": {"$in": x}}))
        pending = [v for v in found_ids if v in chunk]  # (some servers ignore the filter)
        if not pending:
            continue
        live = await c.retry(lambda p=pending: c.col("push_leases").find(
            {"_id": {"$in": p}, "until": {"$gt": now}}, {"_id": 1}).to_list())
        held = {d["_id"] for d in live}
        found.extend(_target(chunk[v]) for v in pending if v not in held)
        if len(found) >= limit:
            break
    return found[:limit]


async def delivery_target(c: MongoConn, ven_id: str) -> DeliveryTarget | None:
    doc = await c.retry(lambda: c.col("delivery_targets").find_one({"_id": ven_id}))
    return _target(doc) if doc else None


async def acquire_push_lease(
    c: MongoConn, ven_id: str, holder: str, now: float, ttl_s: float
) -> PushLease | None:
    try:
        doc = await c.retry(lambda: c.col("push_leases").find_one_and_update(
            {"_id": ven_id, "until": {"$lte": now}},
            {"$set": {"holder": holder, "until": now + ttl_s}, "$inc": {"token": 1},
             "$setOnInsert": {"attempts": 0}},
            upsert=True, return_document=ReturnDocument.AFTER))
    except DuplicateKeyError:  # a live lease exists
        return None
    return _lease(doc) if doc and doc["holder"] == holder else None


async def renew_push_lease(
    c: MongoConn, lease: PushLease, until: float, attempts: int | None
) -> PushLease | None:
    tries = lease.attempts if attempts is None else attempts
    res = await c.retry(lambda: c.col("push_leases").update_one(
        {"_id": lease.ven_id, "holder": lease.holder, "token": lease.token},
        {"$set": {"until": until, "attempts": tries}}))
    if res.matched_count != 1:
        return None
    return PushLease(lease.ven_id, lease.holder, lease.token, until, tries)


async def release_push_lease(c: MongoConn, lease: PushLease) -> None:
    await c.retry(lambda: c.col("push_leases").update_one(
        {"_id": lease.ven_id, "holder": lease.holder, "token": lease.token},
        {"$set": {"until": 0.0}}))


async def peek_next(c: MongoConn, ven_id: str) -> OutboxMessage | None:
    doc = await c.retry(lambda: c.col("outbox").find_one({"ven_id": ven_id},
                                                        sort=[("seq", 1)]))
    return outbox_of(doc) if doc else None


async def ack_delivered(c: MongoConn, lease: PushLease, seq: int) -> bool:
    held = await c.retry(lambda: c.col("push_leases").find_one(
        {"_id": lease.ven_id, "holder": lease.holder, "token": lease.token}, {"_id": 1}))
    if held is None:
        return False
    res = await c.retry(lambda: c.col("outbox").delete_one(
        {"ven_id": lease.ven_id, "seq": seq}))
    return res.deleted_count == 1


# --- inside Store.commit ---------------------------------------------------------------


async def write_targets(c: MongoConn, batch: Batch, s: Session) -> None:
    """drop_delivery_targets, then the upserts (a lease document is left alone)."""
    ops: list[DeleteOne | UpdateOne] = [DeleteOne({"_id": v})
                                        for v in batch.drop_delivery_targets]
    ops += [UpdateOne({"_id": t.ven_id},
                      {"$set": {"transport": t.transport, "address": t.address}}, upsert=True)
            for t in batch.delivery_targets]
    if ops:
        await c.bulk(s, "delivery_targets", ops)
