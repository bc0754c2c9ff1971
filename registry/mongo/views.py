"""Report subscriptions and metadata announcements on MongoDB (discovery over
OpenADR). Cross-process races are settled by conditional single-document writes: a
delivery is claimed by ``find_one_and_update`` on the subscription's old ``next_due``, an
announcement by an update filtered on the old hash."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import DuplicateKeyError

from registry.models import ReportSubscription, SubscriptionState
from registry.mongo.conn import Doc, MongoConn, Session
from registry.mongo.docs import ts
from registry.port import ANY, Batch, Conflict

ACTIVE = SubscriptionState.ACTIVE.value


def sub_doc(s: ReportSubscription) -> Doc:
    doc = s.model_dump(mode="json")
    doc["_id"] = f"{s.ven_id}/{s.report_request_id}"
    doc["next_due"] = ts(s.next_due_at)
    return doc


def sub_of(doc: Doc) -> ReportSubscription:
    return ReportSubscription.model_validate(
        {k: v for k, v in doc.items() if k not in ("_id", "next_due", "ord")}
    )


async def subscriptions_of_ven(c: MongoConn, ven_id: str) -> list[ReportSubscription]:
    docs = await c.retry(lambda: c.col("report_subscriptions").find(
        {"ven_id": ven_id}).sort([("ord", 1), ("_id", 1)]).to_list())
    return [sub_of(d) for d in docs]


async def claim_due_reports(c: MongoConn, now: datetime, limit: int) -> list[ReportSubscription]:
    coll = c.col("report_subscriptions")
    docs = await c.retry(lambda: coll.find(
        {"state": ACTIVE, "next_due": {"$lte": now.timestamp()}}
    ).sort("next_due", 1).limit(limit).to_list())
    claimed = []
    for doc in docs:
        after = sub_of(doc).claimed(now)
        new = sub_doc(after)
        new.pop("_id")
        # conditional on the due time we read: a second process loses this race
        won = await c.retry(lambda d=doc, n=new: coll.find_one_and_update(
            {"_id": d["_id"], "state": ACTIVE, "next_due": d["next_due"]}, {"$set": n}))
        if won is not None:
            claimed.append(after)
    return claimed


async def announced_hash(c: MongoConn, ven_id: str) -> str | None:
    doc = await c.retry(lambda: c.col("announcements").find_one({"_id": ven_id}))
    return doc["hash"] if doc else None


# --- inside Store.commit ---------------------------------------------------------------


async def write_views(c: MongoConn, batch: Batch, s: Session) -> None:
    """The discovery-over-OpenADR parts of a batch; announcements first (a stale one aborts)."""
    ann = c.col("announcements")
    for ven_id, expected, new in batch.announce:
        if expected == ANY:
            await c.do(s, lambda v=ven_id, h=new: ann.update_one(
                {"_id": v}, {"$set": {"hash": h}}, upsert=True, session=s))
        elif expected is None:
            try:
                await c.do(s, lambda v=ven_id, h=new: ann.insert_one(
                    {"_id": v, "hash": h}, session=s))
            except DuplicateKeyError as exc:
                raise Conflict(f"metadata of {ven_id} was announced meanwhile") from exc
        else:
            res = await c.do(s, lambda v=ven_id, e=expected, h=new: ann.update_one(
                {"_id": v, "hash": e}, {"$set": {"hash": h}}, session=s))
            if res.matched_count != 1:
                raise Conflict(f"metadata of {ven_id} was announced meanwhile")
    subs = c.col("report_subscriptions")
    cancelled = SubscriptionState.CANCELLED.value
    for ven_id in batch.cancel_subscriptions_of:
        await c.do(s, lambda v=ven_id: subs.update_many(
            {"ven_id": v, "state": ACTIVE},
            {"$set": {"state": cancelled, "next_due": None, "next_due_at": None}},
            session=s))
    if batch.subscriptions:
        ord_ = time.time_ns()
        ops = []
        for i, sub in enumerate(batch.subscriptions):
            doc = sub_doc(sub)
            ops.append(UpdateOne({"_id": doc.pop("_id")},
                                 {"$set": doc, "$setOnInsert": {"ord": ord_ + i}},
                                 upsert=True))
        await c.bulk(s, "report_subscriptions", ops)
    for ven_id, rr_id, state in batch.subscription_states:
        update: Doc = {"state": state.value}
        if state != SubscriptionState.ACTIVE:
            update.update(next_due=None, next_due_at=None)
        await c.do(s, lambda v=ven_id, r=rr_id, u=update: subs.update_one(
            {"ven_id": v, "report_request_id": r}, {"$set": u}, session=s))


# --- export / import (registry.mongo.transfer) -------------------------------------------


def import_ops(kind: str, records: list[Any]) -> tuple[str, list[Any]]:
    ops = []
    for i, sub in enumerate(records):
        doc = sub_doc(sub)
        ops.append(UpdateOne({"_id": doc.pop("_id")},
                             {"$set": doc, "$setOnInsert": {"ord": time.time_ns() + i}},
                             upsert=True))
    return "report_subscriptions", ops
