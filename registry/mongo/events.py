"""DR events and their per-VEN deliveries on MongoDB (the twin of registry.sqlite.events).

Documents: ``events`` (_id = event_id; the model's JSON plus ``dtstart_us``,
``current_until`` and ``tenants``, the aggregators with a delivery, so an aggregator's
scope is one indexed ``$or``) and ``event_deliveries`` (_id = JSON [event_id, ven_id];
``current_until`` copied from the event, so ``events_for_ven`` is one index range on
(ven_id, current_until) and one read of those events by _id). A prosumer's scope reads
the event ids of its deliveries first (its few VENs' shares).

Write order without transactions (standalone server, nx-27017): see ``write_shares``
and ``write_event_docs``, called by registry.mongo.store around the other writes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from registry.events import DrEvent, EventDelivery, EventStatus, EventTargets, OptType
from registry.group_model import DEFAULT_GROUP, Group, default_group
from registry.models import utcnow
from registry.mongo import groups
from registry.mongo.conn import BULK_OPS, Doc, MongoConn, Session
from registry.mongo.docs import as_json, epoch_us, key, unkey
from registry.mongo.scope import NOTHING, and_, scope_filter
from registry.port import Batch, Conflict, EventQuery, Scope
from registry.port.batch import DISTRIBUTE_MARKER
from registry.port.events import build_deliveries, owned_deliveries
from registry.port.groups import target_name

FINAL = [EventStatus.COMPLETED.value, EventStatus.CANCELLED.value]
CHUNK = 1000  # ids per $in


# current_until of an open-ended event: far in the future rather than null, so "still
# current" is one index range (nx-27017 gives up the index for an $or with "is null")
OPEN_ENDED = 2**62


def us(at: datetime | None) -> int | None:
    return None if at is None else epoch_us(at)


def until_us(e: DrEvent) -> int:
    value = us(e.current_until)
    return OPEN_ENDED if value is None else value


def _current(now_us: int | None) -> Doc:
    return {"current_until": {"$gt": now_us}}


def delivery_id(event_id: str, ven_id: str) -> str:
    return json.dumps([event_id, ven_id])


def marker_id(ven_id: str) -> str:
    """The deterministic _id of a VEN's pending distribute marker (at most one)."""
    return f"{DISTRIBUTE_MARKER}/{ven_id}"


def event_doc(e: DrEvent) -> Doc:
    doc = as_json(e)
    doc.update(_id=e.event_id, dtstart_us=us(e.dtstart), current_until=until_us(e))
    return doc


def event_of(doc: Doc) -> DrEvent:
    doc = {k: v for k, v in doc.items() if k not in (
        "_id", "dtstart_us", "current_until", "tenants")}
    doc.setdefault("targets", {})  # events_for_ven leaves them out
    return DrEvent.model_validate(doc)


def delivery_doc(d: EventDelivery, current_until: int) -> Doc:
    doc = as_json(d)
    doc["resource_opts"] = {key(r): o for r, o in doc["resource_opts"].items()}
    doc.update(_id=delivery_id(d.event_id, d.ven_id), current_until=current_until)
    return doc


def delivery_of(doc: Doc) -> EventDelivery:
    doc = {k: v for k, v in doc.items() if k not in ("_id", "current_until")}
    doc["resource_opts"] = {unkey(r): o for r, o in (doc.get("resource_opts") or {}).items()}
    return EventDelivery.model_validate(doc)


def flat(parts: list[Doc]) -> Doc:
    """The conjunction as one flat filter where the keys allow (nx-27017 plans a flat
    filter far better than $and), else $and."""
    merged: Doc = {}
    for part in parts:
        if set(part) & set(merged):
            return and_(parts)
        merged.update(part)
    return merged


async def _distinct(c: MongoConn, coll: str, field: str, flt: Doc, s: Session = None
                    ) -> list[Any]:
    values = await c.do(s, lambda: c.col(coll).distinct(field, flt, session=s))
    return sorted(v for v in values if v is not None)


async def event_scope(c: MongoConn, scope: Scope) -> Doc:
    """The port's event visibility rule as a filter on ``events``."""
    if scope.is_service:
        return {}
    if scope.role == "aggregator" and scope.aggregator_id is not None:
        a = scope.aggregator_id
        return {"$or": [{"aggregator_id": a}, {"tenants": a}]}
    if scope.role == "prosumer" and scope.account_id is not None:
        ids = await _distinct(c, "event_deliveries", "event_id",
                              {"account_id": scope.account_id})
        return {"_id": {"$in": ids}}
    return dict(NOTHING)


# --- reads ---------------------------------------------------------------------------


async def get_event(c: MongoConn, event_id: str, scope: Scope) -> DrEvent | None:
    flt = flat([{"_id": event_id}, await event_scope(c, scope)])
    doc = await c.retry(lambda: c.col("events").find_one(flt))
    return event_of(doc) if doc else None


async def list_events(c: MongoConn, query: EventQuery, scope: Scope) -> list[DrEvent]:
    parts: list[Doc] = [await event_scope(c, scope)]
    if query.status:
        parts.append({"status": {"$in": [EventStatus(s).value for s in query.status]}})
    if query.ven_id is not None:
        parts.append({"_id": {"$in": await _distinct(
            c, "event_deliveries", "event_id", {"ven_id": query.ven_id})}})
    if query.device_id is not None:
        der = await c.retry(lambda: c.col("ders").find_one(
            {"device_id": query.device_id}, {"ven_id": 1}))
        ids = [] if der is None else await _distinct(
            c, "event_deliveries", "event_id",
            {"ven_id": der["ven_id"], "device_ids": query.device_id})
        parts.append({"_id": {"$in": ids}})
    if query.starts_after is not None:
        parts.append({"dtstart_us": {"$gte": us(query.starts_after)}})
    if query.starts_before is not None:
        parts.append({"dtstart_us": {"$lt": us(query.starts_before)}})
    if query.aggregator_id is not None:
        parts.append({"aggregator_id": query.aggregator_id})
    if query.program is not None:
        parts.append({"program": query.program})
    if query.after_event_id is not None:
        parts.append({"event_id": {"$gt": query.after_event_id}})
    flt = flat(parts)
    docs = await c.retry(lambda: c.col("events").find(flt).sort("event_id", 1)
                         .limit(query.limit).to_list())
    return [event_of(d) for d in docs]


async def open_events(c: MongoConn) -> list[DrEvent]:
    docs = await c.retry(lambda: c.col("events").find(
        {"status": {"$nin": FINAL}}).sort("event_id", 1).to_list())
    return [event_of(d) for d in docs]


async def deliveries_of_event(c: MongoConn, event_id: str, scope: Scope
                              ) -> list[EventDelivery]:
    flt = flat([{"event_id": event_id}, scope_filter(scope)])
    docs = await c.retry(lambda: c.col("event_deliveries").find(flt).sort("ven_id", 1)
                         .to_list())
    return [delivery_of(d) for d in docs]


async def events_for_ven(c: MongoConn, ven_id: str, now: datetime
                         ) -> list[tuple[DrEvent, EventDelivery]]:
    """Two reads: the VEN's current deliveries (index range), then those events. A
    delivery whose event document is not there (a create still being written, or one
    that failed part-way) is left out: readers join on the event."""
    t = us(now)
    shares = await c.retry(lambda: c.col("event_deliveries").find(
        {"ven_id": ven_id, **_current(t)}).sort("event_id", 1).to_list())
    if not shares:
        return []
    ids = [d["event_id"] for d in shares]
    docs = await c.retry(lambda: c.col("events").find(  # not the (maybe huge) targets
        {"_id": {"$in": ids}, **_current(t)}, {"targets": 0, "tenants": 0}).to_list())
    by_id = {d["_id"]: event_of(d) for d in docs}
    return [(by_id[d["event_id"]], delivery_of(d)) for d in shares if d["event_id"] in by_id]


async def get_delivery(c: MongoConn, event_id: str, ven_id: str) -> EventDelivery | None:
    doc = await c.retry(lambda: c.col("event_deliveries").find_one(
        {"_id": delivery_id(event_id, ven_id)}))
    return delivery_of(doc) if doc else None


# --- target resolution -----------------------------------------------------------------

_DER_FIELDS = {"device_id": 1, "ven_id": 1, "resource_id": 1, "aggregator_id": 1,
               "account_id": 1}
_VEN_FIELDS = {"aggregator_id": 1, "account_id": 1}


async def _find_chunked(c: MongoConn, coll: str, field: str, ids: list[str], scope: Doc,
                        fields: Doc) -> list[Doc]:
    out: list[Doc] = []
    if scope == NOTHING:
        return out
    for i in range(0, len(ids), CHUNK):
        # one flat filter: nx-27017 gives up the index for an $in inside $and
        flt = {**scope, field: {"$in": ids[i:i + CHUNK]}}
        out += await c.retry(lambda f=flt: c.col(coll).find(f, fields).to_list())
    return out


async def resolve_targets(c: MongoConn, targets: EventTargets, scope: Scope
                          ) -> list[EventDelivery]:
    """As registry.sqlite.events.resolve_targets: scope inside every read."""
    in_scope = scope_filter(scope)
    vens = {d["_id"]: (d.get("aggregator_id"), d.get("account_id"))
            for d in await _find_chunked(c, "vens", "_id", list(targets.ven_ids), in_scope,
                                         _VEN_FIELDS)}
    found: dict[str, tuple[str, str, str | None, str | None]] = {}
    docs = await _find_chunked(c, "ders", "_id", list(targets.device_ids), in_scope,
                               _DER_FIELDS)  # a DER's _id is its device_id
    docs += await _find_chunked(c, "ders", "ven_id", sorted(vens), in_scope, _DER_FIELDS)
    for d in docs:
        found[d["device_id"]] = (d["ven_id"], d["resource_id"], d.get("aggregator_id"),
                                 d.get("account_id"))
    for name in targets.groups:
        group = await _target_group(c, name, scope)
        after = None
        while group is not None:
            try:
                page = await groups.group_page(c, group, scope, after, 5000)
            except ValidationError:
                break  # a group saved under older rules: it names nothing
            for m in page:
                found[m.device_id] = (m.ven_id, m.resource_id, m.aggregator_id, None)
            if len(page) < 5000:
                break
            after = page[-1].device_id
    missing = sorted({v for v, *_ in found.values()} - vens.keys())
    for d in await _find_chunked(c, "vens", "_id", missing, {}, _VEN_FIELDS):
        vens[d["_id"]] = (d.get("aggregator_id"), d.get("account_id"))
    return build_deliveries(vens, found)


async def _target_group(c: MongoConn, name: str, scope: Scope) -> Group | None:
    """As registry.sqlite.events._target_group."""
    ref = target_name(name, scope)
    group = None
    if ref is not None:
        owner, group_name = ref
        if owner is not None and group_name == DEFAULT_GROUP:
            return default_group(owner)
        group = await groups.group_named(c, owner, group_name, scope)
    return group or await groups.get_group(c, name, scope)


# --- inside Store.commit ---------------------------------------------------------------
#
# Without transactions the writes of a batch are ordered so that a crash part-way leaves
# nothing a reader takes for an acknowledged event: expectations are checked first
# (check), then deliveries, answers and distribute markers are written (write_shares),
# and the event document comes last of the event writes (write_event_docs). Readers join
# on the event (events_for_ven, get_delivery is only asked about events the caller has),
# so a delivery without its event is invisible, and re-running the create (its
# expectation "not there yet" still holds) rewrites the same deliveries. A marker
# written before its event may be claimed by a poll that does not see the event yet:
# write_event_docs then writes the marker again for those VENs. Without transactions
# two racing creates of one event id can both pass check; the loser fails on the event
# document (Conflict) after writing its deliveries (a documented limit of standalone).


async def check(c: MongoConn, batch: Batch, s: Session) -> None:
    """event_expect (read) and event_status (conditional update): Conflict when stale."""
    if batch.event_expect:
        ids = [e for e, _ in batch.event_expect]
        docs = await c.do(s, lambda: c.col("events").find(
            {"_id": {"$in": ids}}, {"modification_number": 1}, session=s).to_list())
        mods = {d["_id"]: d["modification_number"] for d in docs}
        for event_id, expected in batch.event_expect:
            if expected is None and event_id in mods:
                raise Conflict(f"event {event_id} exists already")
            if expected is not None and mods.get(event_id) != expected:
                raise Conflict(f"event {event_id} is not at modification {expected}")
    for event_id, old, new in batch.event_status:
        res = await c.do(s, lambda e=event_id, o=old, n=new: c.col("events").update_one(
            {"_id": e, "status": EventStatus(o).value}, {"$set": {"status": n.value}},
            session=s))
        if res.matched_count != 1:
            raise Conflict(f"status of event {event_id} is no longer {EventStatus(old).value}")


async def _until_of(c: MongoConn, batch: Batch, event_ids: set[str], s: Session
                    ) -> dict[str, int]:
    until = {e.event_id: until_us(e) for e in batch.events}
    missing = sorted(event_ids - until.keys())
    if missing:
        docs = await c.do(s, lambda: c.col("events").find(
            {"_id": {"$in": missing}}, {"current_until": 1}, session=s).to_list())
        until.update({d["_id"]: d.get("current_until", OPEN_ENDED) for d in docs})
    return until


# written only by `delivered` and `opt_answers` once the delivery exists, so a
# re-targeting commit never overwrites an answer that arrived meanwhile
_ANSWER_FIELDS = ("delivered_mod", "delivered_at", "opt", "opt_mod", "opt_at", "resource_opts")


def _share_upsert(doc: Doc) -> UpdateOne:
    answers = {k: doc.pop(k) for k in _ANSWER_FIELDS if k in doc}
    _id = doc.pop("_id")
    return UpdateOne({"_id": _id}, {"$set": doc, "$setOnInsert": answers}, upsert=True)


async def write_shares(c: MongoConn, batch: Batch, s: Session) -> None:
    """Deliveries, answers and markers (before the event documents)."""
    deliveries = owned_deliveries(batch.deliveries, batch.events)
    if deliveries:
        until = await _until_of(c, batch, {d.event_id for d in deliveries}, s)
        await c.bulk(s, "event_deliveries", [
            _share_upsert(delivery_doc(d, until.get(d.event_id, OPEN_ENDED)))
            for d in deliveries])
    fresh = {e for e, expected in batch.event_expect if expected is None}
    for e in batch.events:  # a modified or cancelled event: its deliveries follow
        if e.event_id not in fresh:
            await c.do(s, lambda e=e: c.col("event_deliveries").update_many(
                {"event_id": e.event_id}, {"$set": {"current_until": until_us(e)}},
                session=s))
    ops: list[Any] = [
        UpdateOne({"_id": delivery_id(e, v)}, {"$set": {"delivered_mod": mod,
                                                        "delivered_at": at.isoformat()}})
        for e, v, mod, at in batch.delivered]
    for a in batch.opt_answers:  # in place: a concurrent answer for another resource stays
        opt = OptType(a.opt).value
        update = ({f"resource_opts.{key(r)}": opt for r in a.resource_ids} if a.resource_ids
                  else {"opt": opt, "opt_mod": a.modification_number,
                        "opt_at": a.at.isoformat()})
        ops.append(UpdateOne({"_id": delivery_id(a.event_id, a.ven_id)}, {"$set": update}))
    if ops:
        await c.bulk(s, "event_deliveries", ops)
    for event_id, ven_id in batch.delete_deliveries:
        await c.do(s, lambda e=event_id, v=ven_id: c.col("event_deliveries").delete_one(
            {"_id": delivery_id(e, v)}, session=s))
    if batch.distribute_to:
        await write_markers(c, list(dict.fromkeys(batch.distribute_to)), s)


async def write_markers(c: MongoConn, ven_ids: list[str], s: Session) -> None:
    """One pending marker per VEN: the deterministic _id makes a second one a duplicate
    key, skipped (unordered bulk: the others are still written). In a transaction a
    duplicate key would abort it, so the pending ones are read first there (a racing
    transaction's insert is a write conflict, retried by with_transaction)."""
    if s is not None:
        pending = await _present(c, ven_ids, s)
        ven_ids = [v for v in ven_ids if marker_id(v) not in pending]
        if not ven_ids:
            return
    first = await c.reserve("outbox", len(ven_ids), s)
    now = utcnow().isoformat()
    docs = [{"_id": marker_id(v), "seq": first + i, "ven_id": v, "kind": DISTRIBUTE_MARKER,
             "body": "", "created_at": now} for i, v in enumerate(ven_ids)]
    for i in range(0, len(docs), BULK_OPS):
        chunk = [InsertOne(d) for d in docs[i:i + BULK_OPS]]
        try:
            await c.do(s, lambda ch=chunk: c.col("outbox").bulk_write(
                ch, ordered=False, session=s))
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
        except DuplicateKeyError:
            pass


async def write_event_docs(c: MongoConn, batch: Batch, s: Session) -> None:
    """The event documents, conditional on their expectations (last of the event writes)."""
    expect = dict(batch.event_expect)
    touched = {d.event_id for d in owned_deliveries(batch.deliveries, batch.events)}
    touched |= {e for e, _ in batch.delete_deliveries}
    for e in batch.events:
        doc = event_doc(e)
        del doc["_id"]
        if e.event_id in expect and expect[e.event_id] is None:
            doc["tenants"] = sorted({d.aggregator_id for d in batch.deliveries
                                     if d.aggregator_id and d.event_id in ("", e.event_id)})
            try:
                await c.do(s, lambda d=doc, i=e.event_id: c.col("events").insert_one(
                    {"_id": i, **d}, session=s))
            except (DuplicateKeyError, Conflict) as exc:
                raise Conflict(f"event {e.event_id} exists already") from exc
            continue
        if e.event_id in touched:
            doc["tenants"] = await _distinct(c, "event_deliveries", "aggregator_id",
                                             {"event_id": e.event_id}, s)
        flt: Doc = {"_id": e.event_id}
        if e.event_id in expect:
            flt["modification_number"] = expect[e.event_id]
        res = await c.do(s, lambda f=flt, d=doc: c.col("events").update_one(
            f, {"$set": d}, upsert="modification_number" not in f, session=s))
        if res.matched_count != 1 and res.upserted_id is None:
            raise Conflict(f"event {e.event_id} was changed meanwhile")
    for event_id in sorted(touched - {e.event_id for e in batch.events}):
        tenants = await _distinct(c, "event_deliveries", "aggregator_id",
                                  {"event_id": event_id}, s)
        await c.do(s, lambda i=event_id, t=tenants: c.col("events").update_one(
            {"_id": i}, {"$set": {"tenants": t}}, session=s))
    if s is None and batch.distribute_to and batch.events:
        await _markers_again(c, list(dict.fromkeys(batch.distribute_to)))


async def _markers_again(c: MongoConn, ven_ids: list[str]) -> None:
    """The markers a poll claimed before the event document was there: owed again."""
    present = await _present(c, ven_ids, None)
    claimed = [v for v in ven_ids if marker_id(v) not in present]
    if claimed:
        await write_markers(c, claimed, None)


async def _present(c: MongoConn, ven_ids: list[str], s: Session) -> set[str]:
    """The _ids of the pending markers of these VENs."""
    present: set[str] = set()
    for i in range(0, len(ven_ids), CHUNK):
        ids = [marker_id(v) for v in ven_ids[i:i + CHUNK]]
        docs = await c.do(s, lambda x=ids: c.col("outbox").find(
            {"_id": {"$in": x}}, {"_id": 1}, session=s).to_list())
        present.update(d["_id"] for d in docs)
    return present
