"""Dashboard aggregates on MongoDB (see registry.port.overview): $group pipelines with
the scope in the $match, the twin of registry.sqlite.overview."""

from __future__ import annotations

from datetime import datetime

from registry.discovery import DiscoveryQuery, LogQuery
from registry.models import LogEntry
from registry.mongo.conn import Doc, MongoConn
from registry.mongo.discovery import compile_filter, der_briefs
from registry.mongo.docs import log_of
from registry.mongo.scope import and_, scope_filter
from registry.port import Scope
from registry.port.overview import DerPoint, FleetOverview, add_group

_SEP = "\x1f"


async def _group(c: MongoConn, name: str, pipeline: list[Doc]) -> list[Doc]:
    async def run() -> list[Doc]:
        return await (await c.col(name).aggregate(pipeline)).to_list()

    return await c.retry(run)


async def fleet_overview(c: MongoConn, scope: Scope, since: datetime, kinds: list[str]
                         ) -> FleetOverview:
    ov = FleetOverview()
    flt = scope_filter(scope)
    # one joined group key, as der_stats: nx-27017 does not evaluate compound _id keys
    key = {"$concat": ["$device_class", _SEP, "$device_type", _SEP, "$liveness"]}
    rows = await _group(c, "ders", [
        {"$match": flt},
        {"$group": {"_id": key, "n": {"$sum": 1}, "max_w": {"$sum": "$max_capacity"},
                    "available_w": {"$sum": "$available_capacity"}}},
    ])
    for row in rows:
        device_class, device_type, liveness = row["_id"].split(_SEP)
        add_group(ov, device_class, device_type, liveness, int(row["n"]), row.get("max_w"),
                  row.get("available_w"))
    for row in await _group(c, "vens", [{"$match": flt},
                                        {"$group": {"_id": "$liveness", "n": {"$sum": 1}}}]):
        ov.vens_by_liveness[str(row["_id"])] = int(row["n"])
    if kinds:
        match = and_([flt, {"kind": {"$in": list(kinds)}}, {"at": {"$gte": since.isoformat()}}])
        for row in await _group(c, "log", [{"$match": match},
                                           {"$group": {"_id": "$kind", "n": {"$sum": 1}}}]):
            ov.log_counts[str(row["_id"])] = int(row["n"])
    return ov


async def der_points(c: MongoConn, query: DiscoveryQuery, scope: Scope) -> list[DerPoint]:
    if query.near is not None or query.available_at is not None:
        # exact radius and opt-out checks live in find_ders: take its (slower) briefs
        return [(b.device_id, b.lat, b.lon, b.liveness, b.device_class)
                for b in await der_briefs(c, query, scope)
                if b.lat is not None and b.lon is not None]
    flt = and_([compile_filter(query, scope), {"location": {"$ne": None}}])
    fields = {"device_id": 1, "location": 1, "liveness": 1, "device_class": 1}
    docs = await c.retry(lambda: c.col("ders").find(flt, fields).to_list())
    return [(d["device_id"], d["location"]["lat"], d["location"]["lon"], d["liveness"],
             d["device_class"]) for d in docs if d.get("location")]


async def recent_log(c: MongoConn, query: LogQuery, scope: Scope) -> list[LogEntry]:
    parts: list[Doc] = [scope_filter(scope)]
    if query.kind:
        parts.append({"kind": {"$in": list(query.kind)}})
    for name in ("ven_id", "device_id"):
        value = getattr(query, name)
        if value is not None:
            parts.append({name: value})
    flt = and_(parts)
    docs = await c.retry(
        lambda: c.col("log").find(flt).sort("seq", -1).limit(query.limit).to_list())
    return [log_of(d) for d in docs]


async def outbox_pending(c: MongoConn, ven_ids: list[str], scope: Scope) -> dict[str, int]:
    if not ven_ids:
        return {}
    ids = sorted(set(ven_ids))
    flt = scope_filter(scope)
    if flt:  # only VENs the scope may see
        docs = await c.retry(lambda: c.col("vens").find(
            and_([flt, {"_id": {"$in": ids}}]), {"_id": 1}).to_list())
        ids = [d["_id"] for d in docs]
        if not ids:
            return {}
    rows = await _group(c, "outbox", [{"$match": {"ven_id": {"$in": ids}}},
                                      {"$group": {"_id": "$ven_id", "n": {"$sum": 1}}}])
    return {str(r["_id"]): int(r["n"]) for r in rows}
