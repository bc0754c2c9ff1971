"""Capability detection and the native MongoDB paths (registry.mongo.caps, .geo).

On nx-27017 (no $geoNear, no replica set) detection must choose the portable paths, and
discovery answers on them (the store contract suite covers their results). The native
geo path is checked by the documents it builds and by its page-cutting over candidates
in MongoDB's distance order; against a real mongod (TEST_MONGO_URI) the last test
compares native and portable answers query by query.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator

import pytest

from registry.discovery import DiscoveryQuery, encode_cursor, haversine_m, plan
from registry.models import Location
from registry.mongo import MongoStore, geo
from registry.mongo.discovery import compile_filter, nearest_rows, page_by_distance
from registry.mongo.watch import SeqSignal
from registry.port import SERVICE
from tests.mongo_server import MongoServer, nx_available
from tests.store.support import T0, der, seed, ven
from vtn.config import StoreConfig

pytestmark = pytest.mark.skipif(not nx_available(), reason="nx-27017 not installed")


@pytest.fixture
async def mongo(mongo_server: MongoServer) -> AsyncIterator[MongoStore]:
    store = MongoStore(mongo_server.url())
    await store.open()
    yield store
    await store.close()


async def test_detection_on_the_test_server_picks_the_portable_paths(
    mongo: MongoStore, mongo_server: MongoServer
) -> None:
    caps = mongo.conn.caps
    report = await mongo.check()
    assert report["capabilities"] == caps.as_dict()
    assert caps.version and caps.server
    if mongo_server.external:
        pytest.skip(f"TEST_MONGO_URI server: {caps}")
    assert (caps.transactions, caps.geo, caps.change_streams) == (False, False, False)
    basic = MongoStore(mongo_server.url(), StoreConfig(mongo_capabilities="basic"))
    await basic.open()
    try:
        assert not basic.conn.caps.geo and basic.conn.caps.version == caps.version
    finally:
        await basic.close()


def test_the_native_circle_and_geo_near_stage() -> None:
    q = DiscoveryQuery(near=(52.5, 13.4), radius_m=5000, limit=10)
    flt = compile_filter(q, SERVICE, "circle")
    circle = flt["$and"][-1] if "$and" in flt else flt
    (lon, lat), radians = circle["geo"]["$geoWithin"]["$centerSphere"]
    assert (lon, lat) == (13.4, 52.5)  # GeoJSON order
    assert radians == pytest.approx(5000 / 6_371_008.8, rel=1e-8)
    assert "location.lat" not in str(flt)  # no box on the native path
    assert "geo" not in str(compile_filter(q, SERVICE, "none"))
    stage = geo.near_stage(q, {"device_class": "x"}, None)["$geoNear"]
    assert stage["near"] == {"type": "Point", "coordinates": [13.4, 52.5]}
    assert stage["key"] == "geo" and stage["spherical"] is True
    assert stage["query"] == {"device_class": "x"} and "minDistance" not in stage
    assert stage["maxDistance"] == pytest.approx(5000 * 6_378_100 / 6_371_008.8, rel=1e-8)
    after = geo.near_stage(q, {}, 1200.0)["$geoNear"]
    assert after["minDistance"] < 1200 * geo.SCALE < after["minDistance"] + 1e-3
    pipe = geo.near_pipeline(q, {}, None, {"device_id": 1, "location": 1}, 27)
    assert [next(iter(s)) for s in pipe] == ["$geoNear", "$project", "$limit"]
    assert pipe[1]["$project"][geo.DIST] == 1 and pipe[2] == {"$limit": 27}
    assert geo.native_distance_order(plan(q))
    assert not geo.native_distance_order(plan(q.model_copy(update={"sort": ["device_id"]})))


def _docs(n: int, centre: tuple[float, float]) -> list[dict[str, object]]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        lat = centre[0] + rng.uniform(-0.05, 0.05)
        lon = centre[1] + rng.uniform(-0.05, 0.05)
        if i % 10 == 0 and out:  # exact ties: same place as an earlier DER
            lat, lon = out[-1]["location"]["lat"], out[-1]["location"]["lon"]  # type: ignore[index]
        out.append({"device_id": f"d{i:04d}", "location": {"lat": lat, "lon": lon}})
    return out


def _mongo_order(docs: list[dict[str, object]], centre: tuple[float, float]
                 ) -> list[dict[str, object]]:
    """What $geoNear returns: by distance on MongoDB's sphere (ties in any order)."""
    def dist(d: dict[str, object]) -> float:
        loc = d["location"]
        h = haversine_m(loc["lat"], loc["lon"], *centre)  # type: ignore[index]
        return (h or 0.0) * geo.SCALE
    rng = random.Random(3)
    return sorted(docs, key=lambda d: (dist(d), rng.random()))


async def test_nearest_windows_give_the_pages_of_the_portable_path() -> None:
    centre = (52.5, 13.4)
    docs = _docs(400, centre)
    ordered = _mongo_order(docs, centre)
    reads: list[int] = []
    q = DiscoveryQuery(near=centre, radius_m=4000, limit=25)
    pages_native, pages_portable = [], []
    cursor_q = q
    for _ in range(40):
        p = plan(cursor_q)

        async def read(n: int, p=p, cursor_q=cursor_q):  # type: ignore[no-untyped-def]
            reads.append(n)
            after = p.after[0] if p.after is not None else 0.0
            stage = geo.near_stage(cursor_q, {}, after or None)["$geoNear"]
            low, high = stage.get("minDistance", 0.0), stage["maxDistance"]
            return [d for d in ordered if low <= _hav(d, centre) * geo.SCALE <= high][:n]

        rows = await nearest_rows(read, cursor_q, p)
        expected = page_by_distance(docs, cursor_q, p)
        assert [r.device_id for r in rows] == [r.device_id for r in expected]
        pages_native.append([r.device_id for r in rows[: q.limit]])
        pages_portable.append([r.device_id for r in expected[: q.limit]])
        if len(rows) <= q.limit:
            break
        last = rows[q.limit - 1].values
        cursor_q = q.model_copy(update={"cursor": encode_cursor(p.signature, last)})
    inside = [d for d in docs if _hav(d, centre) <= 4000]
    assert pages_native == pages_portable
    assert sum(map(len, pages_native)) == len(inside) > 100
    assert max(reads) < len(inside)  # never the whole candidate set


def _hav(d: dict[str, object], centre: tuple[float, float]) -> float:
    loc = d["location"]
    return haversine_m(loc["lat"], loc["lon"], *centre) or 0.0  # type: ignore[index]


def test_settled_needs_a_strictly_farther_next_row() -> None:
    assert geo.settled([1.0, 2.0], 2, 3.0, False)
    assert not geo.settled([1.0, 2.0], 2, 2.0, False)  # a tie may still come
    assert not geo.settled([1.0], 2, 9.0, False)
    assert geo.settled([1.0], 2, None, True)


async def test_native_geo_answers_like_the_portable_path(
    mongo: MongoStore, mongo_server: MongoServer
) -> None:
    """The manual check against a real mongod: TEST_MONGO_URI=mongodb://host/db (a
    replica set also exercises transactions and change streams)."""
    if not mongo.conn.caps.geo:
        pytest.skip("server has no $geoNear/$geoWithin (nx-27017); set TEST_MONGO_URI to "
                    "a real mongod to compare the native geo path")
    basic = MongoStore(mongo.url, StoreConfig(mongo_capabilities="basic"))
    await basic.open()
    try:
        rng = random.Random(11)
        v = ven("geo-osb")
        ders = [der(v.ven_id, f"r{i}", location=Location(
            lat=52.5 + rng.uniform(-0.1, 0.1), lon=13.4 + rng.uniform(-0.1, 0.1)))
            for i in range(300)]
        await seed(mongo, v, ders=ders)
        for q in [DiscoveryQuery(near=(52.5, 13.4), radius_m=r, limit=20, sort=s)
                  for r in (500, 3000, 8000) for s in ([], ["device_id"], ["-device_name"])]:
            for _ in range(math.ceil(300 / 20)):
                a, b = await mongo.find_ders(q), await basic.find_ders(q)
                assert [(h.der.device_id, h.distance_m) for h in a.items] == [
                    (h.der.device_id, h.distance_m) for h in b.items]
                assert a.next_cursor == b.next_cursor
                if a.next_cursor is None:
                    break
                q = q.model_copy(update={"cursor": a.next_cursor})
    finally:
        await basic.close()


async def test_seq_signal_wakes_waiters_only_for_newer_entries() -> None:
    import asyncio

    sig = SeqSignal()
    sig.live = True
    waiter = asyncio.create_task(sig.wait(0, 0.01))
    await asyncio.sleep(0)
    sig.update(5)
    assert await waiter == 5
    assert await sig.wait(3, 0.01) == 5  # already newer: at once
    sig.live = False
    sig.update(4)  # older: ignored
    assert await sig.wait(5, 0.01) == 5  # nothing newer: after the poll


async def test_change_stream_wakes_the_sse_reader(mongo: MongoStore) -> None:
    """Real replica set only (TEST_MONGO_URI): a commit by another store instance wakes
    wait_log with a seq at least the new entry's (the poll fallback returns seen)."""
    import asyncio

    from registry.models import LogEntry
    from registry.port import Batch

    if not mongo.conn.caps.change_streams:
        pytest.skip("server has no change streams (nx-27017, a lone mongod); set "
                    "TEST_MONGO_URI to a replica set to check the watch path")
    other = MongoStore(mongo.url)
    await other.open()
    try:
        await mongo.wait_log(0, 0.01)  # starts the watch
        await asyncio.sleep(0.5)
        waiter = asyncio.create_task(mongo.wait_log(await mongo.last_seq(), 0.01))
        [entry] = await other.commit(Batch(log=[LogEntry(kind="test.watch", at=T0)]))
        assert await waiter >= (entry.seq or 0) > 0
    finally:
        await other.close()
