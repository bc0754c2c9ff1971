"""MongoDB persistence of views, report subscriptions and metadata announcements.

Mixed into :class:`registry.mongo_store.MongoStore` (the SQLite twin is
``registry.sqlite_views``). Cross-process races are settled by conditional
single-document writes: a delivery is claimed by ``find_one_and_update`` on the
subscription's old ``next_due``, an announcement by an update filtered on the old hash.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pymongo import ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from registry.discovery import DerBrief, DiscoveryQuery, Page
from registry.models import ReportSubscription, SubscriptionState, Ven, View
from registry.port import ANY, Batch, Conflict, Scope, views_in_scope

T = TypeVar("T")
Doc = dict[str, Any]

VIEW_INDEXES: dict[str, list[tuple[str, list[tuple[str, Any]], dict[str, Any]]]] = {
    "views": [("aggregator_name_unique", [("aggregator_id", 1), ("name", 1)], {"unique": True})],
    "report_subscriptions": [
        ("ven_request_unique", [("ven_id", 1), ("report_request_id", 1)], {"unique": True}),
        ("due", [("state", 1), ("next_due", 1)], {}),
    ],
    # announcements: _id = venID, nothing else to index
}
ACTIVE = SubscriptionState.ACTIVE.value


def _ts(dt: datetime | None) -> float | None:
    return dt.timestamp() if dt is not None else None


def _view_doc(v: View) -> Doc:
    doc = v.model_dump(mode="json")
    doc["_id"] = f"{v.aggregator_id}/{v.name}"
    return doc


def _sub_doc(s: ReportSubscription) -> Doc:
    doc = s.model_dump(mode="json")
    doc["_id"] = f"{s.ven_id}/{s.report_request_id}"
    doc["next_due"] = _ts(s.next_due_at)
    return doc


def _sub(doc: Doc) -> ReportSubscription:
    return ReportSubscription.model_validate(
        {k: v for k, v in doc.items() if k not in ("_id", "next_due", "ord")}
    )


def _view(doc: Doc) -> View:
    return View.model_validate({k: v for k, v in doc.items() if k != "_id"})


class MongoViews:
    """Needs ``col``, ``_retry``, ``_do``, ``_bulk``, ``_find_vens`` of MongoStore."""

    col: Callable[[str], AsyncCollection[Doc]]
    _retry: Callable[..., Awaitable[Any]]
    _do: Callable[..., Awaitable[Any]]
    _bulk: Callable[..., Awaitable[None]]

    if TYPE_CHECKING:  # provided by MongoStore
        async def find_ders(self, query: DiscoveryQuery, scope: Scope) -> Page: ...
        async def _vens_where(self, flt: Doc) -> list[Ven]: ...

    async def vens_with_role(self, role: str) -> list[Ven]:
        return await self._vens_where({"role": role})

    async def der_briefs(self, query: DiscoveryQuery, scope: Scope) -> list[DerBrief]:
        """Pages of find_ders (the one Mongo compiler of discovery filters) as briefs."""
        out: list[DerBrief] = []
        q = query.model_copy(update={"limit": 1000, "cursor": None, "sort": ["device_id"],
                                     "fields": None, "total": False})
        while True:
            page = await self.find_ders(q, scope)
            out.extend(DerBrief.of(hit.der) for hit in page.items)
            if page.next_cursor is None:
                return out
            q = q.model_copy(update={"cursor": page.next_cursor})

    async def list_views(self, scope: Scope, aggregator_id: str | None = None) -> list[View]:
        visible, aggregator_id = views_in_scope(scope, aggregator_id)
        if not visible:
            return []
        flt = {} if aggregator_id is None else {"aggregator_id": aggregator_id}
        docs = await self._retry(lambda: self.col("views").find(flt).sort(
            [("aggregator_id", 1), ("name", 1)]).to_list())
        return [_view(d) for d in docs]

    async def get_view(self, aggregator_id: str, name: str) -> View | None:
        doc = await self._retry(lambda: self.col("views").find_one(
            {"aggregator_id": aggregator_id, "name": name}))
        return _view(doc) if doc else None

    async def subscriptions_of_ven(self, ven_id: str) -> list[ReportSubscription]:
        docs = await self._retry(lambda: self.col("report_subscriptions").find(
            {"ven_id": ven_id}).sort([("ord", 1), ("_id", 1)]).to_list())
        return [_sub(d) for d in docs]

    async def claim_due_reports(
        self, now: datetime, limit: int = 100
    ) -> list[ReportSubscription]:
        coll = self.col("report_subscriptions")
        docs = await self._retry(lambda: coll.find(
            {"state": ACTIVE, "next_due": {"$lte": now.timestamp()}}
        ).sort("next_due", 1).limit(limit).to_list())
        claimed = []
        for doc in docs:
            after = _sub(doc).claimed(now)
            new = _sub_doc(after)
            new.pop("_id")
            # conditional on the due time we read: a second process loses this race
            won = await self._retry(lambda d=doc, n=new: coll.find_one_and_update(
                {"_id": d["_id"], "state": ACTIVE, "next_due": d["next_due"]}, {"$set": n}))
            if won is not None:
                claimed.append(after)
        return claimed

    async def announced_hash(self, ven_id: str) -> str | None:
        doc = await self._retry(lambda: self.col("announcements").find_one({"_id": ven_id}))
        return doc["hash"] if doc else None

    # --- inside Store.commit ------------------------------------------------------

    async def _write_views_batch(self, batch: Batch, s: Any) -> None:
        """The view-related parts of a batch; announcements first (a stale one aborts)."""
        ann = self.col("announcements")
        for ven_id, expected, new in batch.announce:
            if expected == ANY:
                await self._do(s, lambda v=ven_id, h=new: ann.update_one(
                    {"_id": v}, {"$set": {"hash": h}}, upsert=True, session=s))
            elif expected is None:
                try:
                    await self._do(s, lambda v=ven_id, h=new: ann.insert_one(
                        {"_id": v, "hash": h}, session=s))
                except DuplicateKeyError as exc:
                    raise Conflict(f"metadata of {ven_id} was announced meanwhile") from exc
            else:
                res = await self._do(s, lambda v=ven_id, e=expected, h=new: ann.update_one(
                    {"_id": v, "hash": e}, {"$set": {"hash": h}}, session=s))
                if res.matched_count != 1:
                    raise Conflict(f"metadata of {ven_id} was announced meanwhile")
        if batch.views:
            await self._bulk(s, "views", [
                ReplaceOne({"_id": d["_id"]}, d, upsert=True)
                for d in map(_view_doc, batch.views)
            ])
        for aggregator_id, name in batch.delete_views:
            await self._do(s, lambda a=aggregator_id, n=name: self.col("views").delete_one(
                {"aggregator_id": a, "name": n}, session=s))
        subs = self.col("report_subscriptions")
        cancelled = SubscriptionState.CANCELLED.value
        for ven_id in batch.cancel_subscriptions_of:
            await self._do(s, lambda v=ven_id: subs.update_many(
                {"ven_id": v, "state": ACTIVE},
                {"$set": {"state": cancelled, "next_due": None, "next_due_at": None}},
                session=s))
        if batch.subscriptions:
            ord_ = time.time_ns()
            ops = []
            for i, sub in enumerate(batch.subscriptions):
                doc = _sub_doc(sub)
                ops.append(UpdateOne({"_id": doc.pop("_id")},
                                     {"$set": doc, "$setOnInsert": {"ord": ord_ + i}},
                                     upsert=True))
            await self._bulk(s, "report_subscriptions", ops)
        for ven_id, rr_id, state in batch.subscription_states:
            update: Doc = {"state": state.value}
            if state != SubscriptionState.ACTIVE:
                update.update(next_due=None, next_due_at=None)
            await self._do(s, lambda v=ven_id, r=rr_id, u=update: subs.update_one(
                {"ven_id": v, "report_request_id": r}, {"$set": u}, session=s))


# export / import (registry.transfer): collection, sort, parse; and exact restore
VIEW_KIND_READ: dict[str, tuple[str, list[tuple[str, int]], Callable[[Doc], Any]]] = {
    "view": ("views", [("aggregator_id", 1), ("name", 1)], _view),
    "report_subscription": ("report_subscriptions", [("ord", 1), ("_id", 1)], _sub),
}


def view_import_ops(kind: str, records: list[Any]) -> tuple[str, list[Any]]:
    if kind == "view":
        return "views", [ReplaceOne({"_id": d["_id"]}, d, upsert=True)
                         for d in map(_view_doc, records)]
    ops = []
    for i, sub in enumerate(records):
        doc = _sub_doc(sub)
        ops.append(UpdateOne({"_id": doc.pop("_id")},
                             {"$set": doc, "$setOnInsert": {"ord": time.time_ns() + i}},
                             upsert=True))
    return "report_subscriptions", ops
