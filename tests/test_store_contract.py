"""One contract for every store adapter: the same behaviour on SQLite and on MongoDB.

Each test runs against both backends. Concurrency tests open two store instances on the
same file / database (as two VTN processes would) and race them with asyncio.gather.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from registry.models import (
    Der,
    DerStatus,
    DeviceClass,
    DeviceType,
    LastValue,
    Location,
    LogEntry,
    OutboxMessage,
    ReportRequestRecord,
    ReportRequestState,
    ReportSpec,
    Ven,
)
from registry.port import SERVICE, Batch, DerQuery, DerStatusUpdate, Scope, Store
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
            from registry.mongo_store import MongoStore

            return MongoStore(url)
    else:
        from registry.sqlite_store import SqliteStore

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
