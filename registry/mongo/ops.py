"""Operator summaries over MongoDB (registry.port.ops): aggregations on indexed fields."""

from __future__ import annotations

from typing import Any

from pymongo.errors import PyMongoError

from registry.mongo.conn import Doc, MongoConn
from registry.mongo.migrations import version_of
from registry.port.ops import FleetSummary


async def _group(c: MongoConn, coll: str, group: Doc) -> list[Doc]:
    async def run() -> list[Doc]:
        return await (await c.col(coll).aggregate([{"$group": group}])).to_list()

    return await c.retry(run)


async def fleet_summary(c: MongoConn) -> FleetSummary:
    out = FleetSummary(schema_version=await version_of(c))
    for row in await _group(c, "vens", {"_id": "$liveness", "n": {"$sum": 1}}):
        out.vens_by_liveness[str(row["_id"])] = int(row["n"])
    out.vens_registered = await c.retry(
        lambda: c.col("vens").count_documents({"registered": True}))
    for row in await _group(c, "ders", {"_id": "$liveness", "n": {"$sum": 1}}):
        out.ders_by_liveness[str(row["_id"])] = int(row["n"])
    for row in await _group(c, "ders", {"_id": "$device_class", "n": {"$sum": 1},
                                        "cap": {"$sum": "$max_capacity"},
                                        "avail": {"$sum": "$available_capacity"}}):
        out.capacity_by_class[str(row["_id"])] = [
            int(row["n"]), float(row.get("cap") or 0), float(row.get("avail") or 0)]
    out.outbox_pending = await c.retry(lambda: c.col("outbox").count_documents({}))
    out.size_bytes = await _size(c)
    return out


async def _size(c: MongoConn) -> int | None:
    try:
        stats: dict[str, Any] = await c.db.command("dbStats")
    except PyMongoError:  # a server without dbStats (nx-27017 may lack it)
        return None
    size = stats.get("storageSize") or stats.get("dataSize")
    return int(size) if size is not None else None
