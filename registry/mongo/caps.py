"""What the MongoDB server can do, asked at start-up (``MongoConn.open``).

``hello`` says whether it is a replica set member or mongos (transactions, change
streams); ``buildInfo`` gives the version. Geo operators and change streams are then
probed for real, on a scratch collection: nx-27017 (the test server) answers ``hello``
and ``buildInfo`` like a mongod but has no ``$geoNear`` / ``$geoWithin``, and a server
that accepted an operator without implementing it would give wrong answers, not errors.
Whatever the probe cannot confirm falls back to the portable path (the lat/lon box and
haversine in Python for geo, polling the log for the SSE stream).

``store.mongo_capabilities = "basic"`` skips the probes and forces the portable paths
(to compare both on one server, or to rule the native ones out).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from typing import Any

from pymongo.errors import PyMongoError

from registry.port import StoreError

log = logging.getLogger(__name__)
PROBE = "_caps_probe"


@dataclass(frozen=True, slots=True)
class Capabilities:
    server: str = "unknown"  # buildInfo's process name (mongod, mongos) or "unknown"
    version: str = ""
    transactions: bool = False  # a replica set or mongos
    geo: bool = False  # $geoWithin / $geoNear over the 2dsphere index
    change_streams: bool = False  # db.watch() on the log collection

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def replicated(hello: dict[str, Any]) -> bool:
    """Transactions and change streams need a replica set or a mongos."""
    return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"


async def probe_geo(db: Any) -> bool:
    """A point 1 km from the centre is inside 2 km and outside 0.5 km, and $geoNear
    reports its distance: only then are the native geo paths used."""
    col = db[PROBE]
    try:
        await col.drop()
        await col.create_index([("geo", "2dsphere")])
        await col.insert_one({"_id": 1, "geo": {"type": "Point", "coordinates": [0.0, 0.009]}})
        sphere = 6_378_100.0

        def within(radius_m: float) -> dict[str, Any]:
            return {"geo": {"$geoWithin": {"$centerSphere": [[0.0, 0.0], radius_m / sphere]}}}

        inside = await col.find(within(2000)).to_list()
        outside = await col.find(within(500)).to_list()
        near = await col.aggregate([{"$geoNear": {
            "near": {"type": "Point", "coordinates": [0.0, 0.0]}, "distanceField": "d",
            "key": "geo", "spherical": True, "maxDistance": 2000}}]).to_list()
        return (len(inside) == 1 and not outside and len(near) == 1
                and 900 < float(near[0].get("d", 0)) < 1100)
    except (PyMongoError, StoreError, TypeError, ValueError, KeyError) as exc:
        log.debug("no native geo: %s", exc)
        return False
    finally:
        try:
            await col.drop()
        except PyMongoError:
            pass


async def probe_change_streams(db: Any, timeout_s: float = 2.0) -> bool:
    try:
        async def open_close() -> None:
            stream = await db["log"].watch([{"$match": {"operationType": "insert"}}])
            await stream.close()

        await asyncio.wait_for(open_close(), timeout_s)
        return True
    except (PyMongoError, TimeoutError) as exc:
        log.debug("no change streams: %s", exc)
        return False


async def detect(db: Any, hello: dict[str, Any], mode: str = "auto") -> Capabilities:
    try:
        info = await db.command("buildInfo")
    except PyMongoError:
        info = {}
    base = Capabilities(server=str(info.get("process") or "mongod"),
                        version=str(info.get("version", "")), transactions=replicated(hello))
    if mode == "basic":
        return base
    geo = await probe_geo(db)
    streams = replicated(hello) and await probe_change_streams(db)
    caps = Capabilities(base.server, base.version, base.transactions, geo, streams)
    log.info("mongodb %s %s: transactions=%s geo=%s change_streams=%s", caps.server,
             caps.version, caps.transactions, caps.geo, caps.change_streams)
    return caps
