"""Group dispatches on MongoDB (the twin of registry.sqlite.dispatches).

Collections: ``group_dispatches`` (_id = dispatch_id; the record's JSON) and
``group_dispatch_members`` (_id = JSON [dispatch_id, device_id]). The record's write is
the conditional step of a commit and runs first (``write_dispatch_docs``): an insert for
a new record (a duplicate key is a Conflict) or a replace filtered on the expected
``rev``, so of several processes re-dispatching the same record exactly one goes on to
write its events; without transactions (a standalone server) that ordering is the lock.
"""

from __future__ import annotations

import json
from typing import Any

from pymongo import ReplaceOne
from pymongo.errors import DuplicateKeyError

from registry.events import DrEvent, EventDelivery
from registry.group_dispatch import DispatchMember, GroupDispatch
from registry.mongo.conn import Doc, MongoConn, Session
from registry.mongo.events import delivery_of, event_of
from registry.port import Batch, Conflict, Scope
from registry.port.dispatches import DispatchQuery, dispatch_visible, event_id_range


def dispatch_doc(d: GroupDispatch) -> Doc:
    doc = d.model_dump(mode="json")
    doc["_id"] = d.dispatch_id
    return doc


def dispatch_of(doc: Doc) -> GroupDispatch:
    return GroupDispatch.model_validate({k: v for k, v in doc.items() if k != "_id"})


def member_doc(m: DispatchMember) -> Doc:
    doc = m.model_dump(mode="json")
    doc["_id"] = json.dumps([m.dispatch_id, m.device_id])
    return doc


def member_of(doc: Doc) -> DispatchMember:
    return DispatchMember.model_validate({k: v for k, v in doc.items() if k != "_id"})


async def get_dispatch(c: MongoConn, dispatch_id: str, scope: Scope) -> GroupDispatch | None:
    visible, owner = dispatch_visible(scope)
    if not visible:
        return None
    flt: Doc = {"_id": dispatch_id}
    if owner is not None:
        flt["aggregator_id"] = owner
    doc = await c.retry(lambda: c.col("group_dispatches").find_one(flt))
    return dispatch_of(doc) if doc else None


async def list_dispatches(c: MongoConn, q: DispatchQuery, scope: Scope
                          ) -> list[GroupDispatch]:
    visible, owner = dispatch_visible(scope)
    if not visible:
        return []
    flt: Doc = {}
    if owner is not None:
        flt["aggregator_id"] = owner
    if q.aggregator_id is not None:
        if owner is not None and q.aggregator_id != owner:
            return []
        flt["aggregator_id"] = q.aggregator_id
    if q.group is not None:
        flt["group"] = q.group
    if q.open_only:
        flt["closed"] = False
    if q.after_dispatch_id is not None:
        flt["_id"] = {"$gt": q.after_dispatch_id}
    docs = await c.retry(lambda: c.col("group_dispatches").find(flt).sort("_id", 1)
                         .limit(q.limit).to_list())
    return [dispatch_of(d) for d in docs]


async def open_dispatches(c: MongoConn) -> list[GroupDispatch]:
    docs = await c.retry(lambda: c.col("group_dispatches").find({"closed": False})
                         .sort("_id", 1).to_list())
    return [dispatch_of(d) for d in docs]


async def dispatch_members(c: MongoConn, dispatch_id: str, scope: Scope
                           ) -> list[DispatchMember]:
    if await get_dispatch(c, dispatch_id, scope) is None:
        return []
    docs = await c.retry(lambda: c.col("group_dispatch_members").find(
        {"dispatch_id": dispatch_id}).sort("device_id", 1).to_list())
    return [member_of(d) for d in docs]


async def dispatch_events(c: MongoConn, dispatch_id: str) -> list[DrEvent]:
    low, high = event_id_range(dispatch_id)
    docs = await c.retry(lambda: c.col("events").find(
        {"_id": {"$gte": low, "$lt": high}}, {"targets": 0, "tenants": 0}).sort("_id", 1)
        .to_list())
    return [event_of(d) for d in docs]


async def dispatch_deliveries(c: MongoConn, dispatch_id: str) -> list[EventDelivery]:
    low, high = event_id_range(dispatch_id)
    docs = await c.retry(lambda: c.col("event_deliveries").find(
        {"event_id": {"$gte": low, "$lt": high}}).sort([("event_id", 1), ("ven_id", 1)])
        .to_list())
    return [delivery_of(d) for d in docs]


async def write_dispatch_docs(c: MongoConn, batch: Batch, s: Session) -> None:
    """The conditional record writes (first in a commit), then the records written
    without a condition."""
    expected = dict(batch.dispatch_expect)
    for d in batch.dispatches:
        if d.dispatch_id not in expected:
            continue
        rev = expected[d.dispatch_id]
        if rev is None:
            try:
                await c.do(s, lambda d=d: c.col("group_dispatches").insert_one(
                    dispatch_doc(d), session=s))
            except DuplicateKeyError:
                raise Conflict(f"dispatch {d.dispatch_id} exists already") from None
            continue
        res = await c.do(s, lambda d=d, r=rev: c.col("group_dispatches").replace_one(
            {"_id": d.dispatch_id, "rev": r}, dispatch_doc(d), session=s))
        if res.matched_count != 1:
            raise Conflict(f"dispatch {d.dispatch_id} is not at rev {rev}")
    loose = [ReplaceOne({"_id": d.dispatch_id}, dispatch_doc(d), upsert=True)
             for d in batch.dispatches if d.dispatch_id not in expected]
    if loose:
        await c.bulk(s, "group_dispatches", loose)


async def write_members(c: MongoConn, batch: Batch, s: Session) -> None:
    if not batch.dispatch_members:
        return
    await c.bulk(s, "group_dispatch_members", member_ops(batch.dispatch_members))


def member_ops(members: list[DispatchMember]) -> list[ReplaceOne]:
    docs = [member_doc(m) for m in members]
    return [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in docs]


def import_ops(kind: str, records: list[Any]) -> tuple[str, list[Any]]:
    """Upserts of dumped records (registry.mongo.transfer): by dispatch_id, and by
    dispatch_id + device_id for members."""
    if kind == "dispatch":
        return "group_dispatches", [ReplaceOne({"_id": r.dispatch_id}, dispatch_doc(r),
                                               upsert=True) for r in records]
    return "group_dispatch_members", member_ops(records)
