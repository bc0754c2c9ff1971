"""Dashboard aggregates (registry.port.overview): the same numbers on both adapters, and
only the caller's tenant in them."""

from __future__ import annotations

from datetime import timedelta

from registry.discovery import DiscoveryQuery, LogQuery
from registry.models import DeviceClass, DeviceType, Liveness, Location, LogEntry
from registry.port import SERVICE, Batch, Scope, Store
from tests.store.support import T0, der, msg, seed, ven

AGG1 = Scope("aggregator", aggregator_id="agg1")
ACC2 = Scope("prosumer", account_id="acc2")


async def _fleet(store: Store) -> tuple[str, str]:
    v1 = ven("osb-1", aggregator_id="agg1", account_id="acc1", liveness=Liveness.ONLINE)
    v2 = ven("osb-2", aggregator_id="agg2", account_id="acc2")
    ders = [
        der(v1.ven_id, "a", device_class=DeviceClass.DHW, device_type=DeviceType.DEMAND,
            max_capacity=3000.0, available_capacity=1000.0, liveness=Liveness.ONLINE,
            aggregator_id="agg1", account_id="acc1"),
        der(v1.ven_id, "b", device_class=DeviceClass.PV, device_type=DeviceType.GENERATION,
            max_capacity=5000.0, liveness=Liveness.OFFLINE, aggregator_id="agg1",
            account_id="acc1"),
        der(v2.ven_id, "c", device_class=DeviceClass.DHW, device_type=DeviceType.DEMAND,
            max_capacity=2000.0, available_capacity=500.0, liveness=Liveness.STALE,
            aggregator_id="agg2", account_id="acc2"),
    ]
    await seed(store, v1, v2, ders=ders)

    def entry(kind: str, v: object, minutes: int) -> LogEntry:
        return LogEntry(kind=kind, at=T0 - timedelta(minutes=minutes), actor="ven",
                        ven_id=v.ven_id, aggregator_id=v.aggregator_id,  # type: ignore[attr-defined]
                        account_id=v.account_id)  # type: ignore[attr-defined]

    await store.commit(Batch(log=[
        entry("ven.registered", v1, 5), entry("ven.registered", v2, 10),
        entry("ven.registered", v1, 90),  # before the window
        entry("ven.registration_refused", v2, 1), entry("der.changed", v1, 1),
    ]))
    return v1.ven_id, v2.ven_id


async def test_fleet_overview_sums_capacity_and_counts_in_scope(store: Store) -> None:
    await _fleet(store)
    kinds = ["ven.registered", "ven.registration_refused"]
    ov = await store.fleet_overview(SERVICE, T0 - timedelta(hours=1), kinds)
    assert ov.vens_by_liveness == {"online": 1, "offline": 1}
    assert ov.ders_by_liveness == {"online": 1, "offline": 1, "stale": 1}
    dhw = ov.by_class["dhwDevice"]
    assert (dhw.ders, dhw.max_w, dhw.available_w) == (2, 5000.0, 1500.0)
    assert ov.by_type["Generation"].max_w == 5000.0
    assert ov.by_type["Generation"].available_w == 0.0  # no capacity reported: adds 0
    assert ov.log_counts == {"ven.registered": 2, "ven.registration_refused": 1}

    mine = await store.fleet_overview(AGG1, T0 - timedelta(hours=1), kinds)
    assert mine.vens_by_liveness == {"online": 1}
    assert sum(s.ders for s in mine.by_class.values()) == 2
    assert mine.by_class["dhwDevice"].max_w == 3000.0
    assert mine.log_counts == {"ven.registered": 1}

    theirs = await store.fleet_overview(ACC2, T0 - timedelta(hours=1), kinds)
    assert theirs.ders_by_liveness == {"stale": 1}
    assert theirs.log_counts == {"ven.registered": 1, "ven.registration_refused": 1}

    nobody = await store.fleet_overview(Scope("aggregator"), T0, kinds)
    assert nobody.by_class == {} and nobody.vens_by_liveness == {} and nobody.log_counts == {}


async def test_outbox_pending_counts_only_visible_vens(store: Store) -> None:
    a, b = await _fleet(store)
    await store.commit(Batch(outbox=[msg(a, 1), msg(a, 2), msg(b, 1)]))
    assert await store.outbox_pending([a, b, "nope"], SERVICE) == {a: 2, b: 1}
    assert await store.outbox_pending([a, b], AGG1) == {a: 2}
    assert await store.outbox_pending([a, b], ACC2) == {b: 1}
    assert await store.outbox_pending([], SERVICE) == {}


async def test_recent_log_is_newest_first_filtered_and_scoped(store: Store) -> None:
    a, b = await _fleet(store)
    newest = await store.recent_log(LogQuery(limit=2), SERVICE)
    assert [e.kind for e in newest] == ["der.changed", "ven.registration_refused"]
    assert newest[0].seq > newest[1].seq
    mine = await store.recent_log(LogQuery(kind=["ven.registered"]), AGG1)
    assert [e.ven_id for e in mine] == [a, a]
    assert [e.ven_id for e in await store.recent_log(LogQuery(ven_id=b), AGG1)] == []
    theirs = await store.recent_log(LogQuery(ven_id=b, limit=10), ACC2)
    assert {e.kind for e in theirs} == {"ven.registered", "ven.registration_refused"}


async def test_der_points_are_located_ders_matching_filters_in_scope(store: Store) -> None:
    v = ven("osb-9", aggregator_id="agg1", account_id="acc1")
    w = ven("osb-8", aggregator_id="agg2", account_id="acc2")
    await seed(store, v, w, ders=[
        der(v.ven_id, "p", device_id="p", aggregator_id="agg1", account_id="acc1",
            location=Location(lat=52.5, lon=13.4), liveness=Liveness.ONLINE),
        der(v.ven_id, "q", device_id="q", aggregator_id="agg1", account_id="acc1"),
        der(w.ven_id, "r", device_id="r", aggregator_id="agg2", account_id="acc2",
            location=Location(lat=48.1, lon=11.6), device_class=DeviceClass.PV),
    ])
    every = sorted(await store.der_points(DiscoveryQuery(), SERVICE))
    assert every == [("p", 52.5, 13.4, "online", "otherLoad"),
                     ("r", 48.1, 11.6, "offline", "pvSystem")]  # "q" has no location
    assert [p[0] for p in await store.der_points(DiscoveryQuery(), AGG1)] == ["p"]
    pv = await store.der_points(DiscoveryQuery(device_class=["pvSystem"]), SERVICE)
    assert [p[0] for p in pv] == ["r"]
    near = await store.der_points(DiscoveryQuery(near=(52.5, 13.4), radius_m=1000), SERVICE)
    assert [p[0] for p in near] == ["p"]
    assert await store.der_points(DiscoveryQuery(), Scope("prosumer")) == []
