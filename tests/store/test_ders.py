"""DERs: metadata upserts, status and liveness, typed lists, stats, the user PATCH.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from registry.discovery import DerPatch, LogQuery
from registry.models import Der, DerStatus, DeviceClass, DeviceType, LastValue, Location
from registry.port import SERVICE, Batch, Conflict, DerQuery, DerStatusUpdate, Scope, Store
from tests.store.support import T0, Opener, der, fleet, ids_of, seed, seeded, ven


async def test_der_reupsert_keeps_device_id_and_user_fields(store: Store) -> None:
    v = ven()
    first = der(v.ven_id, "hp", device_class=DeviceClass.HVAC, location=Location(lat=1, lon=2))
    await seed(store, v, ders=[first])
    stored = await store.get_der(first.device_id, SERVICE)
    assert stored is not None
    # the user renames it, parks it elsewhere and takes it out of DR
    user = stored.model_copy(update={"device_name": "Living room", "dr_availability": False})
    await store.commit(Batch(ders=[user]))
    # ... then the VEN re-sends METADATA under a fresh id, new class, other location
    again = der(v.ven_id, "hp", device_class=DeviceClass.STORAGE, device_type=DeviceType.STORAGE,
                location=Location(lat=50, lon=8), created_at=T0 + timedelta(days=1),
                updated_at=T0 + timedelta(days=1))
    await store.commit(Batch(ders=[again]))
    ders = await store.ders_of_ven(v.ven_id)
    assert len(ders) == 1
    d = ders[0]
    assert d.device_id == first.device_id and d.created_at == T0
    assert d.device_name == "hp"  # the name of the first upsert, not the user's edit
    assert d.device_class == DeviceClass.STORAGE and d.device_type == DeviceType.STORAGE
    assert d.location == Location(lat=1, lon=2)
    assert d.updated_at == T0 + timedelta(days=1)


async def test_der_without_location_takes_the_first_one_reported(store: Store) -> None:
    v = ven()
    await seed(store, v, ders=[der(v.ven_id, "pv")])
    await store.commit(Batch(ders=[der(v.ven_id, "pv", location=Location(lat=48, lon=11))]))
    [d] = await store.ders_of_ven(v.ven_id)
    assert d.location == Location(lat=48, lon=11)


async def test_delete_der(store: Store) -> None:
    v = ven()
    a, b = der(v.ven_id, "a"), der(v.ven_id, "b")
    await seed(store, v, ders=[a, b])
    await store.commit(Batch(delete_ders=[a.device_id, "unknown"]))
    assert [d.resource_id for d in await store.ders_of_ven(v.ven_id)] == ["b"]
    assert await store.get_der(a.device_id, SERVICE) is None


async def test_status_updates_drive_der_liveness(store: Store) -> None:
    v = ven()
    d = der(v.ven_id, "hp")
    await seed(store, v, ders=[d])
    await store.mark_online(v.ven_id, T0)

    async def report(online: bool | None, at: datetime, **kw: object) -> Der:
        status = None if online is None else DerStatus(online=online, at=at)
        update = DerStatusUpdate(device_id=d.device_id, at=at, status=status, **kw)  # type: ignore[arg-type]
        await store.commit(Batch(der_status=[update]))
        got = await store.get_der(d.device_id, SERVICE)
        assert got is not None
        return got

    off = await report(False, T0 + timedelta(seconds=1))
    assert off.liveness == "offline" and off.status.online is False
    on = await report(True, T0 + timedelta(seconds=2))
    assert on.liveness == "online"  # follows its VEN again
    lv = {"p.1": LastValue(value=1200.0, at=T0, units="W")}  # rIDs may contain dots
    same = await report(None, T0 + timedelta(seconds=3), values=lv)
    assert same.liveness == "online" and same.status.online is True
    assert same.last_values == lv and same.last_report_at == T0 + timedelta(seconds=3)
    assert same.version == on.version + 1 == off.version + 2


async def test_capacity_is_coalesced(store: Store) -> None:
    v = ven()
    d = der(v.ven_id, "bat", max_capacity=5000.0)
    await seed(store, v, ders=[d])
    await store.commit(Batch(ders=[der(v.ven_id, "bat")]))  # METADATA without capacity
    got = await store.get_der(d.device_id, SERVICE)
    assert got is not None and got.max_capacity == 5000.0
    await store.commit(Batch(der_status=[
        DerStatusUpdate(device_id=d.device_id, at=T0, available_capacity=3000.0)]))
    await store.commit(Batch(der_status=[
        DerStatusUpdate(device_id=d.device_id, at=T0, max_capacity=6000.0)]))
    got = await store.get_der(d.device_id, SERVICE)
    assert got is not None and (got.max_capacity, got.available_capacity) == (6000.0, 3000.0)


async def test_list_ders_filters_scopes_and_keyset_paging(store: Store) -> None:
    v1 = ven("osb-1", aggregator_id="agg1", account_id="acc1")
    v2 = ven("osb-2", aggregator_id="agg2", account_id="acc2")
    ders = [der(v1.ven_id, f"r{i}", device_id=f"d{i:02}", aggregator_id="agg1",
                account_id="acc1", device_class=DeviceClass.PV if i % 2 else DeviceClass.HVAC)
            for i in range(10)]
    ders += [der(v2.ven_id, "x", device_id="d99", aggregator_id="agg2", account_id="acc2",
                 device_class=DeviceClass.PV, device_type=DeviceType.GENERATION)]
    await seed(store, v1, v2, ders=ders)

    async def ids(q: DerQuery, scope: Scope = SERVICE) -> list[str]:
        return [d.device_id for d in await store.list_ders(q, scope)]

    assert await ids(DerQuery()) == [f"d{i:02}" for i in range(10)] + ["d99"]
    assert await ids(DerQuery(ven_id=v2.ven_id)) == ["d99"]
    assert await ids(DerQuery(device_class=["pvSystem"], aggregator_id="agg1")) == [
        "d01", "d03", "d05", "d07", "d09"]
    assert await ids(DerQuery(device_type=["Generation"])) == ["d99"]
    assert await ids(DerQuery(liveness=["online"])) == []
    assert await ids(DerQuery(device_class=[])) == await ids(DerQuery())  # empty: no filter
    agg2 = Scope("aggregator", aggregator_id="agg2")
    assert await ids(DerQuery(), agg2) == ["d99"]
    assert await ids(DerQuery(aggregator_id="agg1"), agg2) == []  # scope wins
    assert await ids(DerQuery(), Scope("prosumer", account_id="acc1")) == [
        f"d{i:02}" for i in range(10)]
    assert await ids(DerQuery(), Scope("prosumer")) == []
    assert await ids(DerQuery(), Scope("aggregator", account_id="acc1")) == []
    assert await store.get_der("d99", Scope("aggregator", aggregator_id="agg1")) is None
    assert await store.get_der("d99", agg2) is not None
    pages, after = [], None
    while True:
        page = await ids(DerQuery(limit=4, after_device_id=after))
        if not page:
            break
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [4, 4, 3]
    assert await ids(DerQuery(limit=0)) == []


async def test_count_ders_per_scope(store: Store) -> None:
    v = ven()
    await seed(store, v, ders=[der(v.ven_id, "a", aggregator_id="agg1"),
                               der(v.ven_id, "b", aggregator_id="agg1", account_id="acc"),
                               der(v.ven_id, "c")])
    assert await store.count_ders(SERVICE) == 3
    assert await store.count_ders(Scope("aggregator", aggregator_id="agg1")) == 2
    assert await store.count_ders(Scope("prosumer", account_id="acc")) == 1
    assert await store.count_ders(Scope("prosumer")) == 0


async def test_der_refs_of_ven(store: Store) -> None:
    v = ven()
    d = der(v.ven_id, "hp", aggregator_id="agg", status=DerStatus(online=True, at=T0))
    await seed(store, v, ders=[d])
    [ref] = await store.der_refs_of_ven(v.ven_id)
    assert (ref.device_id, ref.resource_id, ref.aggregator_id, ref.status.online) == (
        d.device_id, "hp", "agg", True)


async def test_two_writers_racing_on_one_der_make_one_der(open_store: Opener) -> None:
    one, two = await open_store(), await open_store()
    v = ven()
    await seed(one, v)
    await asyncio.gather(*[s.commit(Batch(ders=[der(v.ven_id, f"r{i}")]))
                           for i in range(10) for s in (one, two)])
    ders = await two.ders_of_ven(v.ven_id)
    assert sorted(d.resource_id for d in ders) == [f"r{i}" for i in range(10)]
    assert await one.count_ders(SERVICE) == 10


async def test_der_stats_per_scope(store: Store) -> None:
    await seeded(store)
    stats = await store.der_stats(SERVICE)
    assert stats.total == 9
    assert stats.by_class == {"dhwDevice": 2, "evCharger": 2, "otherLoad": 1, "pvSystem": 1,
                              "hvacDevice": 1, "storageDevice": 2}
    assert stats.by_liveness == {"online": 1, "stale": 1, "offline": 7}
    assert stats.by_type == {"Demand": 6, "Generation": 1, "Storage": 2}
    mine = await store.der_stats(Scope("prosumer", account_id="acc1"))
    assert (mine.total, mine.by_class) == (4, {"dhwDevice": 2, "evCharger": 2})
    assert (await store.der_stats(Scope("prosumer"))).total == 0


async def test_patch_der_bumps_version_logs_and_refuses_stale_or_foreign(
    open_store: Opener,
) -> None:
    store = await open_store()
    await seeded(store)
    agg1 = Scope("aggregator", aggregator_id="agg1")
    before = await store.get_der("d01", SERVICE)
    assert before is not None
    patch = DerPatch.model_validate({"device_name": "Kitchen boiler", "dr_availability": False,
                                     "location": {"lat": 48.0, "lon": 11.0}})
    got = await store.patch_der("d01", patch, agg1, actor="alice", if_version=before.version)
    assert got is not None and got.version == before.version + 1
    assert (got.device_name, got.dr_availability, got.location) == (
        "Kitchen boiler", False, Location(lat=48.0, lon=11.0))
    assert got.updated_at > before.updated_at
    assert await store.get_der("d01", SERVICE) == got
    [entry] = await store.find_log(LogQuery(kind=["der.changed"]), SERVICE)
    assert (entry.actor, entry.device_id, entry.aggregator_id) == ("alice", "d01", "agg1")
    assert entry.data["version"] == got.version
    assert entry.data["changes"]["dr_availability"] == {"from": True, "to": False}
    assert entry.data["changes"]["location"]["to"] == {"lat": 48.0, "lon": 11.0}
    # the new location, name and time are what discovery sees
    assert await ids_of(store, near="48,11", radius_m=100) == ["d01"]
    assert await ids_of(store, near="52.52,13.40", radius_m=10_000) == ["d00", "d04", "d03"]
    assert await ids_of(store, q="kitchen") == ["d01"]
    since = got.updated_at - timedelta(milliseconds=1)  # SQLite keeps time.time() floats
    later = sorted(i for i, d in {**{d.device_id: d for d in fleet()[1]}, "d01": got}.items()
                   if d.updated_at >= since)
    assert await ids_of(store, updated_since=since.isoformat()) == later
    assert await ids_of(store, dr_availability=False) == ["d01", "d02"]
    # stale version: Conflict, nothing changes
    with pytest.raises(Conflict):
        await store.patch_der("d01", DerPatch(availability=False), SERVICE, actor="bob",
                              if_version=before.version)
    # not visible in the scope: None, nothing changes, nothing logged
    foreign = await store.patch_der("d05", DerPatch(availability=False), agg1, actor="eve")
    assert foreign is None
    d05 = await store.get_der("d05", SERVICE)
    assert d05 is not None and d05.availability is True and d05.version == 1
    # no change: no new version, no log entry
    same = await store.patch_der("d01", DerPatch(dr_availability=False), SERVICE, actor="bob")
    assert same == got
    # clearing the location takes the DER out of geo queries
    cleared = await store.patch_der("d01", DerPatch.model_validate({"location": None}),
                                    SERVICE, actor="bob")
    assert cleared is not None and cleared.location is None
    assert await ids_of(store, near="48,11", radius_m=100) == []
    assert [e.data["version"] for e in await store.find_log(LogQuery(kind=["der.changed"]),
                                                              SERVICE)] == [2, 3]


async def test_patch_der_racing_writers_one_wins(open_store: Opener) -> None:
    one, two = await open_store(), await open_store()
    await seeded(one)
    results = await asyncio.gather(
        *[s.patch_der("d00", DerPatch(device_name=f"name-{i}"), SERVICE, actor=f"w{i}",
                      if_version=1)
          for i, s in enumerate((one, two, one, two))],
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, Der)]
    assert len(won) == 1 and all(isinstance(r, Conflict) for r in results if r not in won)
    got = await two.get_der("d00", SERVICE)
    assert got is not None and got.version == 2 and got.device_name == won[0].device_name
    assert len(await two.find_log(LogQuery(kind=["der.changed"]), SERVICE)) == 1
