"""One contract for every store adapter: the same behaviour on SQLite and on MongoDB.

Each test runs against both backends. Concurrency tests open two store instances on the
same file / database (as two VTN processes would) and race them with asyncio.gather.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from registry.discovery import DerPatch, DiscoveryQuery, Hit, LogQuery, haversine_m
from registry.models import (
    Der,
    DerStatus,
    DeviceClass,
    DeviceType,
    LastValue,
    Liveness,
    Location,
    LogEntry,
    OutboxMessage,
    ReportRequestRecord,
    ReportRequestState,
    ReportSpec,
    ReportSubscription,
    Ven,
)
from registry.port import SERVICE, Batch, Conflict, DerQuery, DerStatusUpdate, Scope, Store
from tests.mongo_server import MongoServer, nx_available

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
Opener = Callable[[], Awaitable[Store]]


@pytest.fixture(params=["sqlite", "mongo"])
async def open_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Opener]:
    """Opens store instances on one shared database; all closed after the test."""
    opened: list[Store] = []
    if request.param == "mongo":
        if not nx_available():
            pytest.skip("nx-27017 not installed and TEST_MONGO_URI not set")
        server: MongoServer = request.getfixturevalue("mongo_server")
        url = server.url()

        def make() -> Store:
            from registry.mongo import MongoStore

            return MongoStore(url)
    else:
        from registry.sqlite import SqliteStore

        def make() -> Store:
            return SqliteStore(tmp_path / "contract.sqlite3")

    async def opener() -> Store:
        store = make()
        await store.open()
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: Opener) -> Store:
    return await open_store()


def ven(name: str = "osb-1", **kw: object) -> Ven:
    return Ven(ven_name=name, registered=True, **kw)  # type: ignore[arg-type]


def der(ven_id: str, resource: str, **kw: object) -> Der:
    fields: dict[str, object] = {"device_name": resource, "created_at": T0, "updated_at": T0}
    fields.update(kw)
    return Der(ven_id=ven_id, resource_id=resource, **fields)  # type: ignore[arg-type]


async def seed(store: Store, *vens: Ven, ders: list[Der] | None = None) -> None:
    await store.commit(Batch(vens=list(vens), ders=ders or []))


# --- VENs -------------------------------------------------------------------------


async def test_ven_upsert_get_find_and_scoped_list(store: Store) -> None:
    a = ven("osb-a", aggregator_id="agg1", account_id="acc1", fingerprint="fp:a")
    b = ven("osb-b", aggregator_id="agg2", account_id="acc2")
    await seed(store, b, a)
    assert await store.get_ven(a.ven_id) == a
    assert await store.find_ven_by_name("osb-b") == b
    assert await store.find_ven_by_fingerprint("fp:a") == a
    assert await store.get_ven("nope") is None
    assert [v.ven_name for v in await store.list_vens(SERVICE)] == ["osb-a", "osb-b"]
    assert await store.list_vens(Scope("aggregator", aggregator_id="agg2")) == [b]
    assert await store.list_vens(Scope("prosumer", account_id="acc1")) == [a]
    assert await store.list_vens(Scope("aggregator")) == []  # incomplete scope: nothing
    renamed = a.model_copy(update={"transport_address": "http://osb-a.local"})
    await seed(store, renamed)
    got = await store.get_ven(a.ven_id)
    assert got is not None and got.transport_address == "http://osb-a.local"


async def test_ven_upsert_does_not_overwrite_liveness(store: Store) -> None:
    v = ven()
    await seed(store, v)
    await store.mark_online(v.ven_id, T0)
    await seed(store, v.model_copy(update={"profile_name": "2.0b"}))  # stale copy: offline
    got = await store.get_ven(v.ven_id)
    assert got is not None and got.liveness == "online" and got.last_seen == T0
    assert got.profile_name == "2.0b"


# --- DERs -------------------------------------------------------------------------


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


# --- reports ------------------------------------------------------------------------


def spec(ven_id: str, sid: str) -> ReportSpec:
    return ReportSpec(ven_id=ven_id, report_specifier_id=sid, report_name="METADATA_TELEMETRY",
                      r_ids={"r.1": "hp"}, registered_at=T0)


async def test_report_specs_are_replaced_per_ven(store: Store) -> None:
    v, w = ven("a"), ven("b")
    await store.commit(Batch(vens=[v, w], report_specs=[spec(v.ven_id, "s1"), spec(v.ven_id, "s2"),
                                                        spec(w.ven_id, "s1")]))
    await store.commit(
        Batch(replace_report_specs_of=[v.ven_id], report_specs=[spec(v.ven_id, "s3")])
    )
    assert [s.report_specifier_id for s in await store.report_specs_of_ven(v.ven_id)] == ["s3"]
    assert await store.report_specs_of_ven(w.ven_id) == [spec(w.ven_id, "s1")]


def request(ven_id: str, rid: str) -> ReportRequestRecord:
    return ReportRequestRecord(ven_id=ven_id, report_request_id=rid, report_specifier_id="s1",
                               r_ids=["r.1"], granularity_s=60, report_back_duration_s=60,
                               created_at=T0)


async def test_report_request_states_and_cancel_all(store: Store) -> None:
    v, w = ven("a"), ven("b")
    await store.commit(Batch(vens=[v, w], report_requests=[
        request(v.ven_id, "rr1"), request(v.ven_id, "rr2"), request(w.ven_id, "rr1")]))
    await store.commit(Batch(report_request_states=[(v.ven_id, "rr1", ReportRequestState.ACTIVE)]))
    got = await store.get_report_request(v.ven_id, "rr1")
    assert got is not None and got.state == "active"
    assert [r.report_request_id for r in await store.report_requests_of_ven(v.ven_id)] == [
        "rr1", "rr2"]
    await store.commit(Batch(cancel_report_requests_of=[v.ven_id],
                             report_requests=[request(v.ven_id, "rr3")]))
    states = {r.report_request_id: r.state.value
              for r in await store.report_requests_of_ven(v.ven_id)}
    assert states == {"rr1": "cancelled", "rr2": "cancelled", "rr3": "pending"}
    other = await store.get_report_request(w.ven_id, "rr1")
    assert other is not None and other.state == "pending"
    assert await store.get_report_request(v.ven_id, "nope") is None


# --- outbox -------------------------------------------------------------------------


def msg(ven_id: str, i: int) -> OutboxMessage:
    return OutboxMessage(ven_id=ven_id, kind="oadrRegisterReport", body=f"<m{i}/>", created_at=T0)


async def test_outbox_is_fifo_per_ven_and_can_be_cleared(store: Store) -> None:
    await store.commit(Batch(outbox=[msg("a", 1), msg("b", 1), msg("a", 2)]))
    await store.commit(Batch(outbox=[msg("a", 3)]))
    assert await store.pending_count("a") == 3
    first = await store.claim_next("a")
    assert first is not None and first.body == "<m1/>" and first.seq is not None
    await store.commit(Batch(clear_outbox_of=["b"]))
    assert await store.pending_count("b") == 0 and await store.claim_next("b") is None
    bodies = [m.body for m in [await store.claim_next("a"), await store.claim_next("a")] if m]
    assert bodies == ["<m2/>", "<m3/>"]
    assert await store.claim_next("a") is None


async def test_poll_state_tells_registration_binding_liveness_and_pending(store: Store) -> None:
    assert await store.poll_state("nobody") is None
    v = ven("osb-poll", fingerprint="ab:cd")
    w = Ven(ven_name="osb-unreg")
    await store.commit(Batch(vens=[v, w], outbox=[msg(v.ven_id, 1)]))
    state = await store.poll_state(v.ven_id)
    assert state is not None and state.registered and state.fingerprint == "ab:cd"
    assert state.liveness == "offline" and state.pending
    unreg = await store.poll_state(w.ven_id)
    assert unreg is not None and not unreg.registered
    await store.mark_online(v.ven_id, T0)
    assert await store.claim_next(v.ven_id) is not None
    state = await store.poll_state(v.ven_id)
    assert state is not None and state.liveness == "online"
    if type(store).__name__ == "SqliteStore":  # Mongo answers "maybe"; claim_next looks
        assert not state.pending


async def test_claim_next_delivers_each_message_once_to_racing_consumers(
    open_store: Opener,
) -> None:
    one, two = await open_store(), await open_store()
    await one.commit(Batch(outbox=[msg("a", i) for i in range(40)]))
    claims = await asyncio.gather(*[s.claim_next("a") for _ in range(30) for s in (one, two)])
    bodies = [m.body for m in claims if m is not None]
    assert sorted(bodies) == sorted(f"<m{i}/>" for i in range(40))  # all, none twice
    assert await two.pending_count("a") == 0


# --- event log ----------------------------------------------------------------------


async def test_log_seq_is_strictly_increasing_and_gap_free_under_concurrency(
    open_store: Opener,
) -> None:
    one, two = await open_store(), await open_store()
    assert await one.last_seq() == 0

    def batch(i: int) -> Batch:
        return Batch(log=[LogEntry(kind="test", at=T0, data={"i": i, "j": j}) for j in range(2)])

    results = await asyncio.gather(*[s.commit(batch(i)) for i in range(25) for s in (one, two)])
    seqs = [e.seq for r in results for e in r]
    assert all(r[0].seq is not None and r[1].seq == r[0].seq + 1 for r in results)
    assert sorted(seqs) == list(range(1, 101))  # unique, no gaps
    log = await two.read_log(limit=1000)
    assert [e.seq for e in log] == list(range(1, 101))
    assert await one.last_seq() == 100
    assert [e.seq for e in await one.read_log(after=98)] == [99, 100]
    await one.commit(Batch(log=[LogEntry(kind="x", at=T0, ven_id="v1", data={"ok": True})]))
    [mine] = await two.read_log(ven_id="v1")
    assert mine.seq == 101 and mine.data == {"ok": True}


# --- liveness -----------------------------------------------------------------------


async def test_liveness_transitions_once_even_with_two_sweepers(open_store: Opener) -> None:
    one, two = await open_store(), await open_store()
    v = ven(poll_freq_s=10.0)
    d_on = der(v.ven_id, "on")
    d_off = der(v.ven_id, "off", status=DerStatus(online=False))
    await seed(one, v, ders=[d_on, d_off])
    changes = await asyncio.gather(one.mark_online(v.ven_id, T0), two.mark_online(v.ven_id, T0))
    assert [c.new.value for c in changes if c] == ["online"]
    await one.touch({v.ven_id: T0 + timedelta(seconds=5)})

    async def sweep(at: datetime) -> list[str]:
        both = await asyncio.gather(one.sweep_liveness(at, 3, 10), two.sweep_liveness(at, 3, 10))
        return [c.new.value for c in both[0] + both[1]]

    assert await sweep(T0 + timedelta(seconds=34)) == []  # 29 s silent: still online
    assert await sweep(T0 + timedelta(seconds=36)) == ["stale"]
    assert await sweep(T0 + timedelta(seconds=40)) == []
    assert await sweep(T0 + timedelta(seconds=106)) == ["offline"]
    got = await two.get_ven(v.ven_id)
    assert got is not None and got.offline_since == T0 + timedelta(seconds=106)
    back = await asyncio.gather(*[s.mark_online(v.ven_id, T0 + timedelta(seconds=200))
                                  for s in (one, two, one, two)])
    assert [(c.old.value, c.new.value, c.ders) for c in back if c] == [("offline", "online", 2)]
    ders = {d.resource_id: d.liveness.value for d in await one.ders_of_ven(v.ven_id)}
    assert ders == {"on": "online", "off": "offline"}  # its own report says offline
    moves = [(e.data["from"], e.data["to"]) for e in await two.read_log()
             if e.kind == "ven.liveness"]
    assert moves == [("offline", "online"), ("online", "stale"), ("stale", "offline"),
                     ("offline", "online")]


async def test_touch_only_moves_last_seen_forward(store: Store) -> None:
    v = ven()
    await seed(store, v)
    await store.touch({v.ven_id: T0 + timedelta(seconds=9)})
    await store.touch({v.ven_id: T0, "unknown": T0})
    got = await store.get_ven(v.ven_id)
    assert got is not None and got.last_seen == T0 + timedelta(seconds=9)
    assert got.liveness == "offline"  # touch never changes state


# --- races and durability ---------------------------------------------------------------


async def test_two_writers_racing_on_one_der_make_one_der(open_store: Opener) -> None:
    one, two = await open_store(), await open_store()
    v = ven()
    await seed(one, v)
    await asyncio.gather(*[s.commit(Batch(ders=[der(v.ven_id, f"r{i}")]))
                           for i in range(10) for s in (one, two)])
    ders = await two.ders_of_ven(v.ven_id)
    assert sorted(d.resource_id for d in ders) == [f"r{i}" for i in range(10)]
    assert await one.count_ders(SERVICE) == 10


async def test_everything_survives_close_and_reopen(open_store: Opener) -> None:
    store = await open_store()
    v = ven(fingerprint="fp")
    d = der(v.ven_id, "hp", location=Location(lat=1.5, lon=2.5), max_capacity=1.0,
            last_values={"r1": LastValue(value=2.0, at=T0)})
    entries = await store.commit(Batch(
        vens=[v], ders=[d], report_specs=[spec(v.ven_id, "s1")],
        report_requests=[request(v.ven_id, "rr1")], outbox=[msg(v.ven_id, 1)],
        log=[LogEntry(kind="ven.registered", at=T0, ven_id=v.ven_id)]))
    await store.mark_online(v.ven_id, T0)
    before = await snapshot(store, v.ven_id, d.device_id)
    await store.close()
    again = await open_store()
    assert await snapshot(again, v.ven_id, d.device_id) == before
    assert entries[0].seq == 1 and await again.last_seq() == 2


async def snapshot(store: Store, ven_id: str, device_id: str) -> tuple[object, ...]:
    return (
        await store.get_ven(ven_id),
        await store.get_der(device_id, SERVICE),
        await store.report_specs_of_ven(ven_id),
        await store.report_requests_of_ven(ven_id),
        await store.pending_count(ven_id),
        await store.read_log(),
    )


async def test_iter_all_streams_every_kind(store: Store) -> None:
    v = ven()
    ders = [der(v.ven_id, f"r{i}", device_id=str(uuid.uuid4())) for i in range(3)]
    await store.commit(Batch(vens=[v], ders=ders, outbox=[msg(v.ven_id, 1)],
                             log=[LogEntry(kind="k", at=T0)]))
    iter_all = store.iter_all  # type: ignore[attr-defined]
    got = {kind: [r async for r in iter_all(kind)]
           for kind in ("ven", "der", "report_spec", "report_request", "outbox", "log")}
    assert got["ven"] == [await store.get_ven(v.ven_id)]
    assert [d.resource_id for d in got["der"]] == ["r0", "r1", "r2"]
    assert [m.body for m in got["outbox"]] == ["<m1/>"]
    assert [e.seq for e in got["log"]] == [1]


# --- discovery (side API) ---------------------------------------------------------------


def fleet() -> tuple[list[Ven], list[Der]]:
    """Two tenants, every nullable sort key null somewhere, names that test LIKE."""
    v1 = ven("osb-1", aggregator_id="agg1", account_id="acc1")
    v2 = ven("osb-2", aggregator_id="agg2", account_id="acc2")

    def d(i: int, v: Ven, name: str, **kw: object) -> Der:
        kw.setdefault("updated_at", T0 + timedelta(hours=i))
        return der(v.ven_id, f"r{i}", device_id=f"d{i:02}", device_name=name,
                   aggregator_id=v.aggregator_id, account_id=v.account_id, **kw)

    berlin = Location(lat=52.52, lon=13.40)
    ders = [
        d(0, v1, "Boiler-A", device_class=DeviceClass.DHW, max_capacity=3000.0,
          marketplace_availability=True, liveness=Liveness.ONLINE, location=berlin),
        d(1, v1, "boiler-b", device_class=DeviceClass.DHW, max_capacity=2000.0,
          location=Location(lat=52.53, lon=13.40)),
        d(2, v1, "ev_100%", device_class=DeviceClass.EV, max_capacity=11000.0,
          available_capacity=7000.0, dr_availability=False),
        d(3, v1, "ev-1000", device_class=DeviceClass.EV, max_capacity=3000.0,
          available_capacity=500.0, location=Location(lat=52.60, lon=13.40),
          updated_at=T0 + timedelta(hours=3, microseconds=123457)),
        d(4, v2, "Äpfel", device_class=DeviceClass.OTHER, availability=False,
          location=Location(lat=52.52, lon=13.41)),
        d(5, v2, "pv-roof", device_class=DeviceClass.PV, device_type=DeviceType.GENERATION,
          max_capacity=5000.0, available_capacity=1200.0, liveness=Liveness.STALE,
          location=Location(lat=48.14, lon=11.58)),
        # an offset that is not UTC: ordered by the instant, not by the text
        d(6, v2, "heat-pump", device_class=DeviceClass.HVAC, max_capacity=3000.0,
          updated_at=datetime(2026, 11, 23, 20, 30, tzinfo=timezone(timedelta(hours=5)))),
        d(7, v2, "far-east", device_class=DeviceClass.STORAGE, device_type=DeviceType.STORAGE,
          location=Location(lat=-17.0, lon=179.9)),
        d(8, v2, "far-west", device_class=DeviceClass.STORAGE, device_type=DeviceType.STORAGE,
          location=Location(lat=-17.0, lon=-179.8)),
    ]
    return [v1, v2], ders


async def seeded(store: Store) -> list[Der]:
    vens, ders = fleet()
    await seed(store, *vens, ders=ders)
    return ders


def dq(**kw: object) -> DiscoveryQuery:
    return DiscoveryQuery.model_validate(kw)


async def ids_of(store: Store, scope: Scope = SERVICE, **kw: object) -> list[str]:
    page = await store.find_ders(dq(**kw), scope)
    return [h.der.device_id for h in page.items]


async def every_page(store: Store, scope: Scope = SERVICE, **kw: object) -> list[Hit]:
    """All hits, page by page through the cursors (each DER exactly once)."""
    hits: list[Hit] = []
    cursor = None
    while True:
        page = await store.find_ders(dq(**kw, cursor=cursor), scope)
        hits += page.items
        cursor = page.next_cursor
        if cursor is None:
            return hits


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


async def test_find_ven_and_find_log_in_scope(store: Store) -> None:
    (v1, v2), ders = fleet()
    entries = [
        LogEntry(kind="ven.registered", at=T0, ven_id=v1.ven_id, aggregator_id="agg1",
                 account_id="acc1"),
        LogEntry(kind="der.changed", at=T0, ven_id=v2.ven_id, device_id="d05",
                 aggregator_id="agg2", account_id="acc2"),
        LogEntry(kind="der.changed", at=T0, ven_id=v1.ven_id, device_id="d00",
                 aggregator_id="agg1", account_id="acc1"),
        LogEntry(kind="vtn.started", at=T0),
    ]
    await store.commit(Batch(vens=[v1, v2], ders=ders, log=entries))
    agg1 = Scope("aggregator", aggregator_id="agg1")
    assert await store.find_ven(v1.ven_id, agg1) == await store.get_ven(v1.ven_id)
    assert await store.find_ven(v2.ven_id, agg1) is None
    assert await store.find_ven(v2.ven_id, Scope("prosumer", account_id="acc2")) is not None
    assert await store.find_ven("nope", SERVICE) is None

    async def seqs(scope: Scope = SERVICE, **kw: object) -> list[int]:
        return [e.seq or 0 for e in await store.find_log(LogQuery.model_validate(kw), scope)]

    assert await seqs() == [1, 2, 3, 4]
    assert await seqs(agg1) == [1, 3]
    assert await seqs(Scope("prosumer", account_id="acc2")) == [2]
    assert await seqs(Scope("prosumer")) == []
    assert await seqs(kind="der.changed") == [2, 3]
    assert await seqs(kind="der.changed,vtn.started", after=2) == [3, 4]
    assert await seqs(ven_id=v1.ven_id, limit=1) == [1]
    assert await seqs(device_id="d05") == [2]
    assert await seqs(agg1, device_id="d05") == []


async def test_remember_nonce_refuses_a_replay_until_it_expires(open_store: Opener) -> None:
    one, two = await open_store(), await open_store()
    soon = datetime.now(UTC) + timedelta(minutes=5)
    assert await one.remember_nonce("v1", "n1", soon) is True
    assert await one.remember_nonce("v1", "n1", soon) is False
    assert await two.remember_nonce("v1", "n1", soon) is False  # shared by every process
    assert await two.remember_nonce("v2", "n1", soon) is True  # per VEN
    past = datetime.now(UTC) - timedelta(seconds=5)
    assert await one.remember_nonce("v1", "old", past) is True
    assert await two.remember_nonce("v1", "old", soon) is True  # expired: usable again
    assert await one.remember_nonce("v1", "old", soon) is False
    raced = await asyncio.gather(*[s.remember_nonce("v3", "n", soon)
                                   for _ in range(4) for s in (one, two)])
    assert sorted(raced) == [False] * 7 + [True]
    await one.remember_nonce("v3", "gone", past)
    raced = await asyncio.gather(*[s.remember_nonce("v3", "gone", soon)
                                   for _ in range(4) for s in (one, two)])
    assert sorted(raced) == [False] * 7 + [True]


# --- discovery over OpenADR: views, report subscriptions, announcements -----------------


async def test_views_are_scoped_upserted_and_deleted(store: Store) -> None:
    from registry.models import View

    a = View(aggregator_id="A1", name="dhw", filters={"device_class": ["dhwDevice"]})
    b = View(aggregator_id="A2", name="dhw", filters={})
    await store.commit(Batch(views=[a, b]))
    await store.commit(Batch(views=[a.model_copy(update={"filters": {"liveness": ["online"]}})]))
    a1 = Scope("aggregator", aggregator_id="A1")
    assert [v.filters for v in await store.list_views(a1)] == [{"liveness": ["online"]}]
    assert await store.list_views(a1, "A2") == []  # never another aggregator's
    assert await store.list_views(Scope("prosumer", account_id="X")) == []
    assert [(v.aggregator_id, v.name) for v in await store.list_views(SERVICE)] == [
        ("A1", "dhw"), ("A2", "dhw")]
    got = await store.get_view("A2", "dhw")
    assert got == b
    await store.commit(Batch(delete_views=[("A1", "dhw")]))
    assert await store.get_view("A1", "dhw") is None and await store.get_view("A2", "dhw") == b
    agg = ven("agg-1", role="aggregator", aggregator_id="A1")
    await store.commit(Batch(vens=[agg, ven("osb-1")]))
    assert [v.ven_name for v in await store.vens_with_role("aggregator")] == ["agg-1"]


def subscription(ven_id: str, rr: str, **kw: object) -> ReportSubscription:
    fields: dict[str, object] = dict(
        ven_id=ven_id, report_request_id=rr, report_specifier_id="all", r_ids=["agg.online"],
        granularity_s=60, report_back_duration_s=60, next_due_at=T0, created_at=T0)
    fields.update(kw)
    return ReportSubscription(**fields)  # type: ignore[arg-type]


async def test_due_reports_are_claimed_once_by_racing_processes(open_store: Opener) -> None:
    a, b = await open_store(), await open_store()
    subs = [subscription("agg", f"rr-{i}") for i in range(20)]
    subs.append(subscription("agg", "once", report_back_duration_s=0))
    subs.append(subscription("agg", "later", next_due_at=T0 + timedelta(hours=1)))
    await a.commit(Batch(subscriptions=subs))
    got = await asyncio.gather(*(s.claim_due_reports(T0, limit=5) for s in (a, b, a, b) * 3))
    claimed = [c.report_request_id for batch in got for c in batch]
    assert len(claimed) == len(set(claimed))  # racing claims never take one twice
    while batch := await (a if len(claimed) % 2 else b).claim_due_reports(T0, limit=5):
        claimed += [c.report_request_id for c in batch]
    assert sorted(claimed) == sorted([f"rr-{i}" for i in range(20)] + ["once"])  # each once
    assert await a.claim_due_reports(T0 + timedelta(seconds=59)) == []
    again = await b.claim_due_reports(T0 + timedelta(seconds=60), limit=100)
    assert len(again) == 20 and all(s.deliveries == 2 for s in again)
    by_id = {s.report_request_id: s for s in await a.subscriptions_of_ven("agg")}
    assert by_id["once"].state == "done" and by_id["once"].next_due_at is None
    assert by_id["rr-0"].next_due_at == T0 + timedelta(seconds=120)
    assert [s.report_request_id for s in await a.subscriptions_of_ven("agg")][:2] == [
        "rr-0", "rr-1"]  # in the order they were stored


async def test_subscription_states_and_cancel_all_of_a_ven(store: Store) -> None:
    from registry.models import SubscriptionState

    await store.commit(Batch(subscriptions=[subscription("agg", "a"), subscription("agg", "b"),
                                            subscription("other", "c")]))
    await store.commit(Batch(subscription_states=[("agg", "a", SubscriptionState.CANCELLED)]))
    await store.commit(Batch(cancel_subscriptions_of=["agg"],
                             subscriptions=[subscription("agg", "d")]))  # new ones survive
    states = {s.report_request_id: s.state for s in await store.subscriptions_of_ven("agg")}
    assert states == {"a": "cancelled", "b": "cancelled", "d": "active"}
    due = await store.claim_due_reports(T0)
    assert sorted(s.report_request_id for s in due) == ["c", "d"]


async def test_announcement_is_conditional_and_a_stale_one_writes_nothing(
    store: Store
) -> None:
    from registry.port import ANY

    agg = ven("agg-1")
    msg = OutboxMessage(ven_id=agg.ven_id, kind="oadrRegisterReport", body="<x/>")
    await store.commit(Batch(vens=[agg], announce=[(agg.ven_id, None, "h1")]))
    assert await store.announced_hash(agg.ven_id) == "h1"
    with pytest.raises(Conflict):  # someone announced h1 already: expecting None is stale
        await store.commit(Batch(announce=[(agg.ven_id, None, "h2")], outbox=[msg]))
    with pytest.raises(Conflict):
        await store.commit(Batch(announce=[(agg.ven_id, "h0", "h2")], outbox=[msg],
                                 log=[LogEntry(kind="views.announced")]))
    assert await store.pending_count(agg.ven_id) == 0  # nothing half-written
    assert await store.announced_hash(agg.ven_id) == "h1"
    await store.commit(Batch(announce=[(agg.ven_id, "h1", "h2")], outbox=[msg]))
    await store.commit(Batch(announce=[(agg.ven_id, ANY, "h3")]))
    assert await store.announced_hash(agg.ven_id) == "h3"
    assert await store.pending_count(agg.ven_id) == 1


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
