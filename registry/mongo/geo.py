"""Native geo on a real MongoDB: ``$geoWithin`` and ``$geoNear`` over the 2dsphere index
(``geo``, a GeoJSON point kept next to ``location``), used when the server has them
(``registry.mongo.caps``); nx-27017 keeps the lat/lon box (``registry.mongo.discovery``).

Answers stay identical to SQLite's: MongoDB measures on a sphere of radius 6378.1 km,
``registry.discovery.haversine_m`` on one of 6371.0088 km, so the two distances differ by
one constant factor and order the DERs the same way. The server narrows and orders; the
exact radius test, the distances returned and the keyset comparison stay the shared
Python ones (a DER on the boundary is in or out the same way on both backends).

The builders below are pure functions (tests check the documents they build); ``pages``
runs the distance-ordered one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from registry.discovery import EARTH_RADIUS_M, DiscoveryQuery, Plan

Doc = dict[str, Any]
MONGO_SPHERE_M = 6_378_100.0  # MongoDB's Earth radius for GeoJSON $geoNear distances
SCALE = MONGO_SPHERE_M / EARTH_RADIUS_M  # MongoDB metres per haversine metre
SLACK = 1e-9  # relative: the server's circle is a little larger; Python cuts exactly
KEY = "geo"
DIST = "_geo_m"  # the distanceField ($geoNear), MongoDB metres


def point(near: Sequence[float]) -> Doc:
    return {"type": "Point", "coordinates": [float(near[1]), float(near[0])]}


def within_circle(near: Sequence[float], radius_m: float) -> Doc:
    """DERs within radius_m (haversine) of near, and a hair more, by the 2dsphere index."""
    radians = radius_m / EARTH_RADIUS_M * (1 + SLACK) + 1e-12
    return {KEY: {"$geoWithin": {"$centerSphere": [point(near)["coordinates"], radians]}}}


def native_distance_order(plan: Plan) -> bool:
    """$geoNear orders by distance ascending: usable when that is the first sort key."""
    return bool(plan.sort) and plan.sort[0] == ("distance_m", False)


def near_stage(query: DiscoveryQuery, flt: Doc, after_m: float | None) -> Doc:
    """The $geoNear stage: candidates of ``flt`` within the radius, nearest first, from
    the previous page's last distance on (the keyset then cuts exactly)."""
    assert query.near is not None and query.radius_m is not None
    stage: Doc = {
        "near": point(query.near),
        "distanceField": DIST,
        "key": KEY,
        "spherical": True,
        "maxDistance": query.radius_m * SCALE * (1 + SLACK) + 1e-6,
        "query": flt,
    }
    if after_m is not None and after_m > 0:
        stage["minDistance"] = max(0.0, after_m * SCALE * (1 - SLACK) - 1e-6)
    return {"$geoNear": stage}


def near_pipeline(query: DiscoveryQuery, flt: Doc, after_m: float | None, fields: Doc,
                  limit: int) -> list[Doc]:
    """$geoNear, the slim projection the page needs, and a bound on what is read."""
    return [near_stage(query, flt, after_m), {"$project": {**fields, DIST: 1}},
            {"$limit": limit}]


def settled(distances: Sequence[float], wanted: int, last_read: float | None,
            exhausted: bool) -> bool:
    """Whether the rows read so far (haversine distances of those that passed the
    radius and keyset) decide the page: ``wanted`` rows, and the server's next row is
    surely farther than the wanted-th (so no tie after it can sort before it)."""
    if exhausted:
        return True
    if len(distances) < wanted or last_read is None:
        return False
    cut = sorted(distances)[wanted - 1]
    return last_read > cut * (1 + 4 * SLACK) + 1e-6
