"""Export / import: SQLite -> MongoDB -> SQLite loses nothing; importing twice changes nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from registry import dispatch_manager, groups
from registry.dispatch_status import dispatch_status
from registry.events import (
    DrEvent,
    EventSignal,
    EventTargets,
    OptSchedule,
    OptType,
    OptWindow,
    SignalInterval,
    SignalName,
)
from registry.group_dispatch import DispatchSlot, GroupDispatch, MemberState
from registry.group_model import Group, MemberKind
from registry.models import (
    Der,
    DerStatus,
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
from registry.port import SERVICE, Batch, DerStatusUpdate, OptAnswer, Scope, Store
from registry.sqlite import SqliteStore
from registry.transfer import TransferError, export_store, import_store
from tests.mongo_server import MongoServer, nx_available

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
AGG = Scope("aggregator", aggregator_id="agg")
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not nx_available(), reason="no MongoDB for the tests")


async def populate(store: Store) -> None:
    """A registry as a running VTN leaves it: every kind of record, liveness, telemetry."""
    vens = [Ven(ven_name=f"osb-{i}", registered=True, aggregator_id="agg", fingerprint=f"fp{i}")
            for i in range(3)]
    ders = [Der(ven_id=v.ven_id, resource_id=f"r{j}", device_name=f"dev {j}", max_capacity=1e3 * j,
                location=Location(lat=48.1 + j, lon=11.5) if j else None, created_at=T0,
                updated_at=T0)
            for v in vens for j in range(4)]
    await store.commit(Batch(
        vens=vens, ders=ders,
        report_specs=[ReportSpec(ven_id=v.ven_id, report_specifier_id="s1", report_name="M",
                                 r_ids={"a.b": "r0"}, registered_at=T0) for v in vens],
        report_requests=[ReportRequestRecord(ven_id=v.ven_id, report_request_id="rr",
                                             report_specifier_id="s1", r_ids=["a.b"],
                                             granularity_s=60, report_back_duration_s=60,
                                             created_at=T0) for v in vens],
        outbox=[OutboxMessage(ven_id=vens[0].ven_id, kind="oadrRegisterReport", body=f"<m{i}/>",
                              created_at=T0) for i in range(3)],
        log=[LogEntry(kind="ven.registered", at=T0, ven_id=v.ven_id, data={"n": 1, "ok": True})
             for v in vens],
        groups=[(Group(group_id="g-1", aggregator_id="agg", name="dhw",
                       filters={"device_class": ["dhwDevice"]}, includes=1, created_at=T0,
                       updated_at=T0), None)],
        group_members=[("g-1", ders[0].device_id, MemberKind.INCLUDE)],
        subscriptions=[ReportSubscription(
            ven_id=vens[2].ven_id, report_request_id=f"sub-{i}", report_specifier_id="all",
            r_ids=["agg.online"], granularity_s=60, report_back_duration_s=60,
            next_due_at=T0 + timedelta(minutes=i), created_at=T0) for i in range(2)],
    ))
    await store.mark_online(vens[0].ven_id, T0)
    await store.commit(Batch(
        der_status=[DerStatusUpdate(device_id=ders[1].device_id, at=T0 + timedelta(seconds=1),
                                    status=DerStatus(online=False, at=T0),
                                    values={"a.b": LastValue(value=5.5, at=T0, units="W")},
                                    available_capacity=42.0)],
        report_request_states=[(vens[1].ven_id, "rr", ReportRequestState.ACTIVE)],
    ))
    await store.sweep_liveness(T0 + timedelta(seconds=40), 3, 10)
    # demand response: an event with two deliveries, one answered, a marker, an opt
    event = DrEvent(
        event_id="ev-1", program="p", dtstart=T0 + timedelta(hours=1), duration_s=600,
        recovery_s=60, aggregator_id="agg", created_at=T0, modified_at=T0,
        targets=EventTargets(ven_ids=[vens[0].ven_id, vens[1].ven_id]),
        signals=[EventSignal(signal_name=SignalName.SIMPLE, signal_type="level",
                             intervals=[SignalInterval(duration_s=600, value=2)])])
    deliveries = await store.resolve_targets(event.targets, SERVICE)
    await store.commit(Batch(events=[event], event_expect=[("ev-1", None)],
                             deliveries=deliveries, distribute_to=[vens[1].ven_id]))
    await store.commit(Batch(
        delivered=[("ev-1", vens[0].ven_id, 0, T0)],
        opt_answers=[OptAnswer("ev-1", vens[0].ven_id, OptType.OUT, 0, T0, ["r1"])],
        opts=[OptSchedule(opt_id="o1", ven_id=vens[2].ven_id, aggregator_id="agg",
                          opt_type=OptType.OUT, opt_reason="x", created_at=T0,
                          windows=[OptWindow(start=T0, duration_s=60)])]))


async def dump(store: Store) -> str:
    out = io.StringIO()
    await export_store(store, out)
    return out.getvalue()


async def opened(store: Store) -> Store:
    await store.open()
    return store


async def test_sqlite_to_mongo_to_sqlite_loses_nothing_and_reimport_is_a_no_op(
    tmp_path: Path, mongo_server: MongoServer
) -> None:
    from registry.mongo import MongoStore

    src = await opened(SqliteStore(tmp_path / "src.sqlite3"))
    mongo = await opened(MongoStore(mongo_server.url()))
    back = await opened(SqliteStore(tmp_path / "back.sqlite3"))
    try:
        await populate(src)
        original = await dump(src)
        # vens, ders, specs, requests, group, its member, subscriptions, event, deliveries, opt,
        # outbox (+ a distribute marker), log (+2 liveness logs)
        assert len(original.splitlines()) == 3 + 12 + 3 + 3 + 1 + 1 + 2 + 1 + 2 + 1 + 4 + 3 + 2
        for _ in range(2):  # twice: the second import changes nothing
            await import_store(mongo, io.StringIO(original))
            assert await dump(mongo) == original
        via_mongo = await dump(mongo)
        for _ in range(2):
            await import_store(back, io.StringIO(via_mongo))
            assert await dump(back) == original
        assert await back.last_seq() == await src.last_seq() == 5
        [first] = [e for e in await back.read_log(limit=1)]
        assert first.data == {"n": 1, "ok": True}
        first_ven = (await src.list_vens(SERVICE))[0].ven_id
        if await back.pending_count(first_ven):
            claimed = await back.claim_next(first_ven)
            assert claimed is not None and claimed.body == "<m0/>"  # FIFO kept
    finally:
        for s in (src, mongo, back):
            await s.close()


async def test_log_that_does_not_continue_the_target_is_refused(tmp_path: Path) -> None:
    src = await opened(SqliteStore(tmp_path / "a.sqlite3"))
    other = await opened(SqliteStore(tmp_path / "b.sqlite3"))
    try:
        await src.commit(Batch(log=[LogEntry(kind="a", at=T0), LogEntry(kind="b", at=T0)]))
        await other.commit(Batch(log=[LogEntry(kind="x", at=T0)]))
        with pytest.raises(TransferError):
            await import_store(other, io.StringIO(await dump(src)))
    finally:
        await src.close()
        await other.close()


async def dispatched(store: Store) -> dict[str, str]:
    """A group dispatch as the API leaves it, then re-dispatched once: osb-b opted out and
    its share went to osb-a (opted in) and osb-c (no answer yet); c9 was never eligible."""
    fleet = {"osb-a": [("a0", 2000), ("a1", 4000)], "osb-b": [("b0", 4000)],
             "osb-c": [("c0", 2000), ("c9", 0)]}
    vens = {n: Ven(ven_name=n, registered=True, aggregator_id="agg") for n in fleet}
    await store.commit(Batch(vens=list(vens.values()), ders=[
        Der(ven_id=vens[n].ven_id, resource_id=r, device_name=r, available_capacity=w,
            aggregator_id="agg", liveness=Liveness.ONLINE, created_at=T0, updated_at=T0)
        for n, rs in fleet.items() for r, w in rs]))
    for v in vens.values():
        await store.mark_online(v.ven_id, T0)
    await groups.create_group(store, "agg", "fleet", filters={}, actor="test", now=T0)
    d, members = await dispatch_manager.create_dispatch(store, GroupDispatch(
        dispatch_id="gd1", group="fleet", dtstart=T0 + timedelta(minutes=10),
        slots=[DispatchSlot(duration_s=900, kw=6), DispatchSlot(duration_s=900, kw=3)]),
        AGG, actor="op", now=T0)
    ev = {m.ven_id: m.event_id for m in members if m.event_id}
    a, b = vens["osb-a"].ven_id, vens["osb-b"].ven_id
    await store.commit(Batch(delivered=[(ev[a], a, 0, T0), (ev[b], b, 0, T0)],
                             opt_answers=[OptAnswer(ev[a], a, OptType.IN, 0, T0),
                                          OptAnswer(ev[b], b, OptType.OUT, 0, T0)]))
    assert await dispatch_manager.redispatch(store, d, T0 + timedelta(seconds=5))
    return {n: v.ven_id for n, v in vens.items()}


def kinds(dumped: str) -> list[str]:
    return [json.loads(line)["type"] for line in dumped.splitlines()]


async def test_group_dispatches_survive_sqlite_to_mongo_to_sqlite(
    tmp_path: Path, mongo_server: MongoServer
) -> None:
    from registry.mongo import MongoStore

    src = await opened(SqliteStore(tmp_path / "src.sqlite3"))
    mongo = await opened(MongoStore(mongo_server.url()))
    back = await opened(SqliteStore(tmp_path / "back.sqlite3"))
    stores = (src, mongo, back)
    try:
        vens = await dispatched(src)
        original = await dump(src)
        order = kinds(original)
        assert order.count("dispatch") == 1 and order.count("dispatch_member") == 5
        # after the events and their deliveries, before the outbox and the log
        assert order.index("event_delivery") < order.index("dispatch") < order.index(
            "dispatch_member") < order.index("outbox")
        for target in (mongo, back):  # SQLite -> MongoDB, then what MongoDB exports -> SQLite
            source = await dump(mongo) if target is back else original
            for _ in range(2):  # twice: the second import changes nothing
                await import_store(target, io.StringIO(source))
                assert await dump(target) == original
        later = T0 + timedelta(minutes=12)
        want = await dispatch_status(src, "gd1", AGG, later)
        assert (want["rev"], want["redispatches"], want["status"]) == (1, 1, "active")
        assert want["totals"]["states"] == {"assigned": 3, "opted_out": 1, "unavailable": 1}
        # osb-a's optIn stands for its new share (1.5 + 3 kW of the 6) until it is sent
        assert want["slots"][0]["opted_in_kw"] == 4.5
        moved = {m.resource_id: (m.state, m.assigned_kw)
                 for m in await back.dispatch_members("gd1", AGG)}
        assert moved == {"a0": (MemberState.ASSIGNED, [1.5, 0.75]),
                         "a1": (MemberState.ASSIGNED, [3.0, 1.5]),
                         "b0": (MemberState.OPTED_OUT, [0.0, 0.0]),
                         "c0": (MemberState.ASSIGNED, [1.5, 0.75]),
                         "": (MemberState.UNAVAILABLE, [0.0, 0.0])}  # c9: never sent
        for s in (mongo, back):
            assert await s.get_dispatch("gd1", SERVICE) == await src.get_dispatch(
                "gd1", SERVICE)
            assert await s.dispatch_members("gd1", AGG) == await src.dispatch_members(
                "gd1", AGG)
            assert await dispatch_status(s, "gd1", AGG, later) == want
        # the re-dispatch job still knows the open dispatch: osb-c opts out everywhere
        c = vens["osb-c"]
        [ev_c] = {m.event_id for m in await src.dispatch_members("gd1", AGG)
                  if m.ven_id == c and m.event_id}
        for s in stores:
            assert [d.dispatch_id for d in await s.open_dispatches()] == ["gd1"]
            await s.commit(Batch(delivered=[(ev_c, c, 1, T0)],
                                 opt_answers=[OptAnswer(ev_c, c, OptType.OUT, 1, T0)]))
            assert await dispatch_manager.redispatch_open(s, later) == ["gd1"]
        after = [await dispatch_status(s, "gd1", AGG, later) for s in stores]
        assert after[0]["rev"] == 2 and after[0]["totals"]["states"]["opted_out"] == 2
        assert after[1] == after[0] and after[2] == after[0]
    finally:
        for s in stores:
            await s.close()


async def test_a_dump_from_before_dispatches_still_imports(
    tmp_path: Path, mongo_server: MongoServer
) -> None:
    from registry.mongo import MongoStore

    src = await opened(SqliteStore(tmp_path / "src.sqlite3"))
    targets = (await opened(SqliteStore(tmp_path / "old.sqlite3")),
               await opened(MongoStore(mongo_server.url())))
    try:
        await populate(src)
        await dispatched(src)
        old = "".join(line for line in io.StringIO(await dump(src))
                      if not line.startswith('{"type": "dispatch'))
        assert "gd1" in old and '"dispatch_member"' not in old  # its events, no record
        for target in targets:
            counts = await import_store(target, io.StringIO(old))
            assert counts["dispatch"] == counts["dispatch_member"] == 0
            assert await dump(target) == old
            assert await target.open_dispatches() == []
    finally:
        for s in (src, *targets):
            await s.close()


def vtn_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vtn.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


async def test_cli_export_then_import_into_mongodb(
    tmp_path: Path, mongo_server: MongoServer
) -> None:
    src = await opened(SqliteStore(tmp_path / "data" / "vtn.sqlite3"))
    await populate(src)
    original = await dump(src)
    await src.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VTN_STORE_URL", None)
    exported = vtn_cli("export", "--data-dir", str(tmp_path / "data"), env=env)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == original
    dump_file = tmp_path / "dump.jsonl"
    dump_file.write_text(exported.stdout)
    env["VTN_STORE_URL"] = mongo_server.url()
    for _ in range(2):
        loaded = vtn_cli("import", str(dump_file), env=env)
        assert loaded.returncode == 0, loaded.stderr
        assert '"der": 12' in loaded.stderr
    check = vtn_cli("store", "check", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert '"reachable": true' in check.stdout
    again = vtn_cli("export", env=env)
    assert again.stdout == original


def test_cli_reports_an_unreachable_mongodb_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VTN_STORE_URL": "mongodb://127.0.0.1:9/x",
           "VTN_STORE_MONGO_TIMEOUT_MS": "200", "VTN_STORE_MONGO_RETRIES": "0"}
    result = vtn_cli("export", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "unavailable" in result.stderr
