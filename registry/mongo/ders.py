"""DERs on MongoDB: reads, typed lists, stats, the user PATCH, and the batch writes
(metadata upserts, deletes, status updates). Discovery is in registry.mongo.discovery.

``list_ders`` mirrors the SQLite query exactly, so both adapters answer the same
question the same way: equality on ids, ``$in`` on the enumerations (an empty list means
"no filter", as in SQL), keyset pagination on ``device_id`` and ``ORDER BY device_id``.
Only operators that nx-27017 and real MongoDB both implement are used (no ``$expr``, no
``$exists``: nx-27017 treats ``null`` as missing there).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne

from registry.discovery import DerPatch, DerStats, patch_diff
from registry.models import Der, DerStatus, LogEntry
from registry.mongo.conn import Doc, MongoConn, Session
from registry.mongo.docs import der_of, der_upsert, epoch_us, online_flag, status_op
from registry.mongo.log import append_log
from registry.mongo.scope import and_, scope_filter
from registry.port import Conflict, DerQuery, DerRef, DerStatusUpdate, Scope

DER_SORT: list[tuple[str, int]] = [("device_id", 1)]
_REF_FIELDS = {"device_id": 1, "resource_id": 1, "aggregator_id": 1, "account_id": 1,
               "status": 1}
_STATS_SEP = "\x1f"
_BACKFILL_BATCH = 1000


async def get_der(c: MongoConn, device_id: str, scope: Scope) -> Der | None:
    scoped = scope_filter(scope)
    flt = {"$and": [scoped, {"device_id": device_id}]} if scoped else {"device_id": device_id}
    doc = await c.retry(lambda: c.col("ders").find_one(flt))
    return der_of(doc) if doc else None


async def ders_of_ven(c: MongoConn, ven_id: str) -> list[Der]:
    docs = await c.retry(
        lambda: c.col("ders").find({"ven_id": ven_id}).sort("resource_id", 1).to_list()
    )
    return [der_of(d) for d in docs]


async def der_refs_of_ven(c: MongoConn, ven_id: str) -> list[DerRef]:
    docs = await c.retry(
        lambda: c.col("ders").find({"ven_id": ven_id}, _REF_FIELDS).sort("resource_id", 1)
        .to_list()
    )
    return [
        DerRef(
            d["device_id"],
            d["resource_id"],
            d.get("aggregator_id"),
            d.get("account_id"),
            DerStatus.model_validate(d.get("status") or {}),
        )
        for d in docs
    ]


def _merge(base: Doc, field: str, condition: Any) -> Doc:
    """AND one more condition onto a filter without overwriting an existing one."""
    if field not in base:
        base[field] = condition
    elif base[field] != condition:
        base.setdefault("$and", []).append({field: condition})
    return base


def der_filter(query: DerQuery, scope: Scope) -> Doc:
    """Filter for ``list_ders``: scope first, then the query's own conditions."""
    flt = scope_filter(scope)
    for field, value in (
        ("ven_id", query.ven_id),
        ("aggregator_id", query.aggregator_id),
        ("account_id", query.account_id),
    ):
        if value is not None:
            _merge(flt, field, value)
    for field, values in (
        ("device_class", query.device_class),
        ("device_type", query.device_type),
        ("liveness", query.liveness),
    ):
        if values:
            _merge(flt, field, {"$in": [str(v) for v in values]})
    if query.after_device_id is not None:
        _merge(flt, "device_id", {"$gt": query.after_device_id})
    return flt


def der_limit(query: DerQuery) -> int | None:
    """SQL LIMIT semantics: 0 means no rows, a negative limit means no limit.

    Returns None for "return nothing" (Mongo's ``limit(0)`` would mean unlimited).
    """
    if query.limit == 0:
        return None
    return max(query.limit, 0)


async def list_ders(c: MongoConn, query: DerQuery, scope: Scope) -> list[Der]:
    limit = der_limit(query)
    if limit is None:
        return []
    flt = der_filter(query, scope)
    docs = await c.retry(lambda: c.col("ders").find(flt).sort(DER_SORT).limit(limit).to_list())
    return [der_of(d) for d in docs]


async def count_ders(c: MongoConn, scope: Scope) -> int:
    flt = scope_filter(scope)
    return await c.retry(lambda: c.col("ders").count_documents(flt))


async def der_stats(c: MongoConn, scope: Scope) -> DerStats:
    # one group over the joined key: nx-27017 does not evaluate a compound group key
    # ({"_id": {"c": "$device_class", ...}}) but does evaluate $concat
    key = {"$concat": ["$device_class", _STATS_SEP, "$device_type", _STATS_SEP,
                       "$liveness"]}
    pipeline: list[Doc] = [{"$match": scope_filter(scope)},
                           {"$group": {"_id": key, "n": {"$sum": 1}}}]

    async def run() -> list[Doc]:
        return await (await c.col("ders").aggregate(pipeline)).to_list()

    stats = DerStats(total=0)
    for row in await c.retry(run):
        device_class, device_type, liveness = row["_id"].split(_STATS_SEP)
        n = int(row["n"])
        stats.total += n
        for bucket, k in ((stats.by_class, device_class), (stats.by_type, device_type),
                          (stats.by_liveness, liveness)):
            bucket[k] = bucket.get(k, 0) + n
    return stats


async def patch_der(
    c: MongoConn, device_id: str, patch: DerPatch, scope: Scope, actor: str,
    if_version: int | None,
) -> Der | None:
    """Read in the scope, check the version, then an update conditional on the version
    read (a concurrent writer makes it match nothing: Conflict); logged as der.changed.
    One transaction where the server has them; otherwise the log entry follows the
    update (as every batch on a standalone server)."""
    changes = patch.changes()
    return await c.unit(lambda s: _patch_der(c, device_id, changes, scope, actor, if_version, s))


async def _patch_der(c: MongoConn, device_id: str, changes: dict[str, Any], scope: Scope,
                     actor: str, if_version: int | None, s: Session) -> Der | None:
    ders = c.col("ders")
    flt = and_([scope_filter(scope), {"device_id": device_id}])
    doc = await c.do(s, lambda: ders.find_one(flt, session=s))
    if doc is None:
        return None
    der = der_of(doc)
    if if_version is not None and der.version != if_version:
        raise Conflict(f"version is {der.version}, not {if_version}")
    diff = patch_diff(der, changes)
    if not diff:
        return der
    now = datetime.now(UTC)
    new = der.model_copy(update=changes)
    loc = new.location
    fields: Doc = {
        "availability": new.availability,
        "dr_availability": new.dr_availability,
        "marketplace_availability": new.marketplace_availability,
        "device_name": new.device_name,
        "location": loc.model_dump(mode="json") if loc else None,
        "updated_at": now.isoformat(),
        "updated_us": epoch_us(now),
    }
    update: Doc = {"$set": fields, "$inc": {"version": 1}}
    if loc is not None:
        fields["geo"] = {"type": "Point", "coordinates": [loc.lon, loc.lat]}
    else:
        update["$unset"] = {"geo": ""}
    res = await c.do(s, lambda: ders.update_one(
        {"device_id": device_id, "version": der.version}, update, session=s))
    if res.modified_count != 1:  # another writer won between the read and the update
        raise Conflict("DER changed concurrently")
    await append_log(c, [
        LogEntry(
            kind="der.changed", at=now, actor=actor, ven_id=der.ven_id,
            device_id=device_id, aggregator_id=der.aggregator_id,
            account_id=der.account_id,
            data={"changes": diff, "version": der.version + 1},
        )
    ], s)
    doc = await c.do(s, lambda: ders.find_one({"device_id": device_id}, session=s))
    return der_of(doc) if doc else None


# --- inside Store.commit ---------------------------------------------------------------


async def write_ders(c: MongoConn, ders: list[Der], s: Session) -> None:
    await c.bulk(s, "ders", [op for d in ders for op in der_upsert(d)])


async def delete_ders(c: MongoConn, device_ids: list[str], s: Session) -> None:
    ids = list(device_ids)
    await c.do(s, lambda: c.col("ders").delete_many({"device_id": {"$in": ids}}, session=s))


async def write_status(c: MongoConn, updates: list[DerStatusUpdate], s: Session) -> None:
    ven_liveness = await _liveness_for(c, updates, s)
    ops = [status_op(u, ven_liveness) for u in updates]
    await c.bulk(s, "ders", ops)


async def _liveness_for(
    c: MongoConn, updates: list[DerStatusUpdate], s: Session
) -> dict[str, str]:
    """device_id -> its VEN's liveness, for DERs that report themselves online."""
    ids = [u.device_id for u in updates if online_flag(u.status) == 1]
    if not ids:
        return {}
    ders = await c.do(s, lambda: c.col("ders").find(
        {"device_id": {"$in": ids}}, {"device_id": 1, "ven_id": 1}, session=s).to_list())
    ven_ids = list({d["ven_id"] for d in ders})
    vens = await c.do(s, lambda: c.col("vens").find(
        {"_id": {"$in": ven_ids}}, {"liveness": 1}, session=s).to_list())
    by_ven = {v["_id"]: v["liveness"] for v in vens}
    return {d["device_id"]: by_ven[d["ven_id"]] for d in ders if d["ven_id"] in by_ven}


# --- migration -------------------------------------------------------------------------


async def backfill_updated_us(c: MongoConn) -> int:
    """Give DER documents written before ``updated_us`` existed their numeric
    ``updated_at`` (filters and sorts use it). Idempotent; a no-op when none lack it."""
    ders = c.col("ders")
    fixed = 0
    while True:
        docs = await c.retry(lambda: ders.find(
            {"updated_us": {"$in": [None]}}, {"updated_at": 1}).limit(_BACKFILL_BATCH)
            .to_list())
        if not docs:
            return fixed
        ops = [UpdateOne({"_id": d["_id"]}, {"$set": {"updated_us": _epoch_us(d)}})
               for d in docs]
        await c.retry(lambda o=ops: ders.bulk_write(o, ordered=False))
        fixed += len(ops)


def _epoch_us(doc: Doc) -> int:
    value = doc.get("updated_at")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return epoch_us(value if isinstance(value, datetime) else datetime.now(UTC))
