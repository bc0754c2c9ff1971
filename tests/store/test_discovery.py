"""Discovery (side API): filters, scope, sorts and cursors, projection, geo.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

import pytest

from registry.discovery import DerPatch, DiscoveryQuery, haversine_m
from registry.models import Der, DeviceClass, Location
from registry.port import SERVICE, Batch, Scope, Store
from tests.store.support import der, dq, every_page, ids_of, seed, seeded, ven


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, [f"d{i:02}" for i in range(9)]),
        ({"device_class": "dhwDevice,evCharger"}, ["d00", "d01", "d02", "d03"]),
        ({"device_type": "Generation"}, ["d05"]),
        ({"ven_id": "nobody"}, []),
        ({"aggregator_id": "agg2", "device_class": "storageDevice"}, ["d07", "d08"]),
        ({"account_id": "acc1", "liveness": "online"}, ["d00"]),
        ({"availability": False}, ["d04"]),
        ({"dr_availability": "false"}, ["d02"]),
        ({"marketplace_availability": True}, ["d00"]),
        ({"max_capacity_min": 3000, "max_capacity_max": 5000}, ["d00", "d03", "d05", "d06"]),
        ({"available_capacity_max": 1200}, ["d03", "d05"]),
        ({"updated_since": "2026-11-23T15:00:00Z"}, ["d03", "d04", "d05", "d06", "d07", "d08"]),
        # to the microsecond (nx-27017 rounds doubles to 15 digits: ~10 µs)
        ({"updated_since": "2026-11-23T15:00:00.123457Z"},
         ["d03", "d04", "d05", "d06", "d07", "d08"]),
        ({"updated_since": "2026-11-23T15:00:00.123458Z"}, ["d04", "d05", "d06", "d07", "d08"]),
        # d06 is 15:30 UTC, written as 20:30+05:00
        ({"updated_since": "2026-11-23T15:30:01+00:00"}, ["d04", "d05", "d07", "d08"]),
        ({"updated_since": "2026-11-23T20:30:00+05:00"}, ["d04", "d05", "d06", "d07", "d08"]),
        ({"q": "BOILER"}, ["d00", "d01"]),
        ({"q": "100%"}, ["d02"]),  # % and _ are literals
        ({"q": "ev_"}, ["d02"]),
        ({"q": "äpfel"}, []),  # case folding is ASCII-only (SQLite LIKE)
        ({"q": "Äpf"}, ["d04"]),
        ({"q": "-"}, ["d00", "d01", "d03", "d05", "d06", "d07", "d08"]),
        ({"bbox": "52.5,13.3,52.55,13.405"}, ["d00", "d01"]),
        ({"bbox": "-18,179.8,-16,-179.8"}, ["d07", "d08"]),  # across the antimeridian
        ({"bbox": "-18,179.95,-16,-179.8"}, ["d08"]),
    ],
)
async def test_find_ders_filters(store: Store, query: dict[str, object],
                                 expected: list[str]) -> None:
    await seeded(store)
    assert await ids_of(store, **query) == expected


async def test_find_ders_scope_is_inside_the_query(store: Store) -> None:
    await seeded(store)
    agg2 = Scope("aggregator", aggregator_id="agg2")
    assert await ids_of(store, agg2) == ["d04", "d05", "d06", "d07", "d08"]
    assert await ids_of(store, agg2, aggregator_id="agg1") == []  # the scope wins
    assert await ids_of(store, Scope("prosumer", account_id="acc1"), sort="-max_capacity") == [
        "d02", "d00", "d03", "d01"]
    assert await ids_of(store, Scope("prosumer")) == []  # incomplete scope: nothing
    assert await ids_of(store, Scope("aggregator", account_id="acc1")) == []
    page = await store.find_ders(dq(total=True, limit=2), agg2)
    assert page.total == 5 and len(page.items) == 2
    stats = await store.der_stats(agg2)
    assert (stats.total, stats.by_type) == (5, {"Demand": 2, "Generation": 1, "Storage": 2})


@pytest.mark.parametrize(
    "sort",
    [
        "-max_capacity,device_name",  # nulls last when descending
        "max_capacity",  # nulls first when ascending
        "available_capacity,-device_id",
        "-available_capacity,device_class",
        "-updated_at",
        "device_class,-liveness,device_type",
        "ven_id,device_name",
    ],
)
async def test_find_ders_sort_and_cursor_pages_cover_everything_once(
    store: Store, sort: str
) -> None:
    ders = await seeded(store)
    full = await ids_of(store, sort=sort, limit=100)
    keys = sort.split(",")
    rank = {d.device_id: d for d in ders}

    def key_of(device_id: str) -> tuple[object, ...]:
        return tuple(_sortable(rank[device_id], k) for k in keys)

    # the same order a brute force gives (null lowest, device_id breaks ties)
    assert full == sorted(rank, key=lambda i: (*_ordered(key_of(i), keys), i))
    for limit in (1, 2, 4):
        paged = [h.der.device_id for h in await every_page(store, sort=sort, limit=limit)]
        assert paged == full


def _sortable(d: Der, key: str) -> object:
    name = key.lstrip("-")
    value = getattr(d, name)
    if name == "updated_at":
        return value.timestamp()
    return value.value if hasattr(value, "value") else value


class _Desc:
    """Reverses the order of a value (for brute-force multi-key sorts)."""

    def __init__(self, v: object) -> None:
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return other.v < self.v  # type: ignore[operator]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v


def _ordered(values: tuple[object, ...], keys: list[str]) -> tuple[object, ...]:
    out: list[object] = []
    for value, key in zip(values, keys, strict=True):
        has = (0, 0) if value is None else (1, value)  # null lowest
        out.append(_Desc(has) if key.startswith("-") else has)
    return tuple(out)


async def test_find_ders_cursor_is_stable_when_rows_are_inserted_before_it(
    store: Store,
) -> None:
    await seeded(store)
    first = await store.find_ders(dq(sort="device_name", limit=3), SERVICE)
    v = ven("osb-3")
    await seed(store, v, ders=[der(v.ven_id, "new", device_id="d99", device_name="aaa")])
    second = await store.find_ders(dq(sort="device_name", limit=3, cursor=first.next_cursor),
                                   SERVICE)
    assert [h.der.device_name for h in first.items] == ["Boiler-A", "boiler-b", "ev-1000"]
    assert [h.der.device_name for h in second.items] == ["ev_100%", "far-east", "far-west"]


async def test_find_ders_fields_projection(store: Store) -> None:
    ders = {d.device_id: d for d in await seeded(store)}
    page = await store.find_ders(dq(fields="device_id,max_capacity,location",
                                    sort="-max_capacity", limit=3), SERVICE)
    got = [(h.der.device_id, h.der.max_capacity, h.der.location) for h in page.items]
    assert got == [(i, ders[i].max_capacity, ders[i].location) for i in ("d02", "d05", "d00")]
    again = await store.find_ders(dq(fields="device_id,max_capacity,location",
                                     sort="-max_capacity", limit=3, cursor=page.next_cursor),
                                  SERVICE)
    assert [h.der.device_id for h in again.items] == ["d03", "d06", "d01"]


async def test_find_ders_near_sorts_by_exact_distance_within_the_radius(store: Store) -> None:
    ders = await seeded(store)
    centre = (52.52, 13.40)
    dist = {d.device_id: haversine_m(d.location.lat, d.location.lon, *centre)
            for d in ders if d.location is not None}
    inside = sorted((m, i) for i, m in dist.items() if m is not None and m <= 10_000)
    assert [i for _, i in inside] == ["d00", "d04", "d01", "d03"]
    page = await store.find_ders(dq(near="52.52,13.40", radius_m=10_000, total=True), SERVICE)
    assert [(h.der.device_id, h.distance_m) for h in page.items] == [(i, m) for m, i in inside]
    assert page.total == 4
    for limit in (1, 3):
        hits = await every_page(store, near="52.52,13.40", radius_m=10_000, limit=limit)
        assert [h.der.device_id for h in hits] == [i for _, i in inside]
        desc = await every_page(store, near="52.52,13.40", radius_m=10_000, limit=limit,
                                sort="-distance_m")
        assert [h.der.device_id for h in desc] == [i for _, i in inside][::-1]
        # another sort: distances are still given, the radius still applies
        by_cap = await every_page(store, near="52.52,13.40", radius_m=10_000, limit=limit,
                                  sort="-max_capacity")
        assert [(h.der.device_id, h.distance_m) for h in by_cap] == [
            ("d00", dist["d00"]), ("d03", dist["d03"]), ("d01", dist["d01"]),
            ("d04", dist["d04"])]
    assert await ids_of(store, near="52.52,13.40", radius_m=2000, device_class="dhwDevice",
                        sort="distance_m,device_name") == ["d00", "d01"]
    agg2 = Scope("aggregator", aggregator_id="agg2")
    assert await ids_of(store, agg2, near="52.52,13.40", radius_m=10_000) == ["d04"]
    assert await ids_of(store, near="-17,180", radius_m=25_000) == ["d07", "d08"]
    assert await ids_of(store, near="52.52,13.40", radius_m=1) == ["d00"]


async def test_der_briefs_apply_filters_and_scope(store: Store) -> None:
    v = ven("osb-1", aggregator_id="A1")
    ders = [Der(ven_id=v.ven_id, resource_id=f"r{i}", device_name=f"d{i}", aggregator_id=agg,
                device_class=cls, max_capacity=1000.0 * i,
                location=Location(lat=52.5, lon=13.4 + i / 100))
            for i, (agg, cls) in enumerate([("A1", DeviceClass.DHW), ("A1", DeviceClass.PV),
                                            ("A2", DeviceClass.DHW), ("A1", DeviceClass.DHW)])]
    await store.commit(Batch(vens=[v], ders=ders))
    scope = Scope("aggregator", aggregator_id="A1")
    briefs = await store.der_briefs(DiscoveryQuery(device_class=[DeviceClass.DHW]), scope)
    expected = sorted([ders[0].device_id, ders[3].device_id])
    assert [b.device_id for b in briefs] == expected  # device_id order, A2's left out
    b = next(x for x in briefs if x.device_id == ders[3].device_id)
    assert (b.resource_id, b.ven_id, b.device_class, b.max_capacity, b.lat) == (
        "r3", v.ven_id, "dhwDevice", 3000.0, 52.5)
    near = await store.der_briefs(
        DiscoveryQuery(near=[52.5, 13.4], radius_m=1500, limit=1), SERVICE)
    # r2 is 1.36 km east, r3 2.03 km; the query's limit does not apply
    assert {x.resource_id for x in near} == {"r0", "r1", "r2"}


async def test_updated_since_a_ders_own_time_finds_it(store: Store) -> None:
    """What GET /ders returned as updated_at, passed back as updated_since, includes it."""
    v = ven("osb-1")
    await store.commit(Batch(vens=[v], ders=[
        Der(ven_id=v.ven_id, resource_id=f"r{i}", device_name=f"d{i}") for i in range(20)]))
    for hit in (await store.find_ders(DiscoveryQuery(limit=100), SERVICE)).items:
        patched = await store.patch_der(hit.der.device_id, DerPatch(availability=False),
                                        SERVICE, actor="t")
        assert patched is not None
        page = await store.find_ders(DiscoveryQuery(updated_since=patched.updated_at,
                                                    limit=100), SERVICE)
        assert patched.device_id in {h.der.device_id for h in page.items}
