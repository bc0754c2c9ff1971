"""DR events: target resolution, scoped reads, the demand-response Batch fields.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from registry.events import CANCELLED_KEPT, EventStatus, EventTargets, OptType
from registry.group_model import Group, MemberKind
from registry.models import Der, LogEntry
from registry.port import SERVICE, Batch, Conflict, EventQuery, OptAnswer, Scope, Store
from registry.port.batch import DISTRIBUTE_MARKER
from tests.store.event_support import (
    ACC1,
    ACC2,
    AGG1,
    AGG2,
    START,
    create,
    event,
    share,
    world,
)
from tests.store.support import T0, Opener, der, ven


def _shape(deliveries: list) -> list[tuple[str, list[str], list[str]]]:
    return [(d.ven_id, d.device_ids, d.resource_ids) for d in deliveries]


async def test_resolve_targets_devices_vens_and_empty_ven(store: Store) -> None:
    (v1, v2), _, empty = await world(store)
    got = await store.resolve_targets(
        EventTargets(device_ids=["d04", "d00", "nope"], ven_ids=[empty.ven_id]), SERVICE)
    by_ven = {d.ven_id: d for d in got}
    assert [d.ven_id for d in got] == sorted(by_ven)
    assert by_ven[v1.ven_id].device_ids == ["d00"] and by_ven[v1.ven_id].resource_ids == ["r0"]
    assert (by_ven[v2.ven_id].aggregator_id, by_ven[v2.ven_id].account_id) == ("agg2", "acc2")
    assert by_ven[empty.ven_id].device_ids == [] and by_ven[empty.ven_id].resource_ids == []
    assert by_ven[empty.ven_id].account_id == "acc9"
    whole = await store.resolve_targets(EventTargets(ven_ids=[v1.ven_id]), SERVICE)
    assert _shape(whole) == [(v1.ven_id, ["d00", "d01", "d02", "d03"],
                              ["r0", "r1", "r2", "r3"])]


async def test_resolve_targets_never_leaves_the_scope(store: Store) -> None:
    (v1, v2), _, empty = await world(store)
    targets = EventTargets(device_ids=["d00", "d04", "d05"],
                           ven_ids=[v2.ven_id, empty.ven_id])
    assert _shape(await store.resolve_targets(targets, AGG1)) == sorted(
        [(v1.ven_id, ["d00"], ["r0"]), (empty.ven_id, [], [])])
    assert _shape(await store.resolve_targets(targets, AGG2)) == [
        (v2.ven_id, [f"d0{i}" for i in range(4, 9)], [f"r{i}" for i in range(4, 9)])]
    assert _shape(await store.resolve_targets(targets, ACC1)) == [(v1.ven_id, ["d00"], ["r0"])]
    assert await store.resolve_targets(targets, Scope("aggregator")) == []  # incomplete


async def test_resolve_targets_groups_are_the_scopes_views(store: Store) -> None:
    (v1, v2), _, _ = await world(store)
    await store.commit(Batch(groups=[
        (Group(aggregator_id="agg1", name="evs", filters={"device_class": ["evCharger"]}), None),
        (Group(aggregator_id="agg2", name="evs", filters={}), None),
    ]))
    evs = await store.resolve_targets(EventTargets(groups=["evs"]), AGG1)
    assert _shape(evs) == [(v1.ven_id, ["d02", "d03"], ["r2", "r3"])]
    every = await store.resolve_targets(EventTargets(groups=["all", "missing"]), AGG1)
    assert _shape(every) == [(v1.ven_id, ["d00", "d01", "d02", "d03"],
                              ["r0", "r1", "r2", "r3"])]
    # a service names <aggregator>/<group>; a prosumer's group is nothing
    svc = await store.resolve_targets(EventTargets(groups=["agg1/evs", "agg2/all", "evs"]),
                                      SERVICE)
    assert [(d.ven_id, len(d.device_ids)) for d in svc] == sorted(
        [(v1.ven_id, 2), (v2.ven_id, 5)])
    assert await store.resolve_targets(EventTargets(groups=["all"]), ACC1) == []
    # the view filter runs inside its owner's scope whatever it filters
    theirs = Group(aggregator_id="agg1", name="theirs", filters={"aggregator_id": ["agg2"]})
    await store.commit(Batch(groups=[(theirs, None)]))
    assert await store.resolve_targets(EventTargets(groups=["agg1/theirs"]), SERVICE) == []
    # an explicit member of another tenant names nothing either; by id works too
    static = Group(aggregator_id="agg1", name="static", filters=None)
    await store.commit(Batch(groups=[(static, None)], group_members=[
        (static.group_id, "d01", MemberKind.INCLUDE),
        (static.group_id, "d05", MemberKind.INCLUDE)]))
    assert _shape(await store.resolve_targets(EventTargets(groups=[static.group_id]), AGG1)) == [
        (v1.ven_id, ["d01"], ["r1"])]
    assert await store.resolve_targets(EventTargets(groups=[static.group_id]), AGG2) == []
    # a service's own group by bare name
    mine = Group(name="evs", filters={"device_class": ["evCharger"]})
    await store.commit(Batch(groups=[(mine, None)]))
    assert [len(d.device_ids) for d in await store.resolve_targets(
        EventTargets(groups=["evs"]), SERVICE)] == [2]


async def test_resolve_targets_takes_100k_device_ids(store: Store) -> None:
    (v1, _), _, _ = await world(store)
    many = [str(uuid.uuid4()) for _ in range(99_998)] + ["d01", "d03"]
    got = await store.resolve_targets(EventTargets(device_ids=many), AGG1)
    assert _shape(got) == [(v1.ven_id, ["d01", "d03"], ["r1", "r3"])]


async def test_create_commits_event_deliveries_and_markers(store: Store) -> None:
    (v1, v2), _, empty = await world(store)
    ev = event(targets=EventTargets(ven_ids=[v1.ven_id, v2.ven_id, empty.ven_id]))
    deliveries = await create(store, ev, SERVICE)
    assert await store.get_event("ev-1", SERVICE) == ev
    assert await store.deliveries_of_event("ev-1", SERVICE) == deliveries
    assert await store.get_delivery("ev-1", v2.ven_id) == deliveries[
        [d.ven_id for d in deliveries].index(v2.ven_id)]
    assert await store.get_delivery("ev-1", "other") is None
    for v in (v1, v2, empty):
        assert await store.pending_count(v.ven_id) == 1
        marker = await store.claim_next(v.ven_id)
        assert marker is not None and (marker.kind, marker.body) == (DISTRIBUTE_MARKER, "")
    # a second create of the same id fails whole: no log entry, nothing changed
    with pytest.raises(Conflict):
        await store.commit(Batch(
            events=[event(program="other")], event_expect=[("ev-1", None)],
            distribute_to=[v1.ven_id], log=[LogEntry(kind="event.created", at=T0)]))
    assert (await store.get_event("ev-1", SERVICE)).program == "p1"  # type: ignore[union-attr]
    assert await store.read_log() == [] and await store.pending_count(v1.ven_id) == 0


async def test_stale_expectations_and_status_changes_conflict(store: Store) -> None:
    (v1, _), _, _ = await world(store)
    ev = event(targets=EventTargets(ven_ids=[v1.ven_id]))
    await create(store, ev, SERVICE)
    v1_ev = ev.model_copy(update={"modification_number": 1, "program": "p2"})
    with pytest.raises(Conflict):  # expected 3, is 0
        await store.commit(Batch(events=[v1_ev], event_expect=[("ev-1", 3)]))
    with pytest.raises(Conflict):  # expected to exist
        await store.commit(Batch(events=[v1_ev.model_copy(update={"event_id": "x"})],
                                 event_expect=[("x", 0)]))
    assert await store.get_event("x", SERVICE) is None
    await store.commit(Batch(events=[v1_ev], event_expect=[("ev-1", 0)]))
    assert (await store.get_event("ev-1", SERVICE)).program == "p2"  # type: ignore[union-attr]
    await store.commit(Batch(event_status=[("ev-1", EventStatus.FAR, EventStatus.NEAR)]))
    with pytest.raises(Conflict):  # another process logged this transition already
        await store.commit(Batch(event_status=[("ev-1", EventStatus.FAR, EventStatus.NEAR)],
                                 log=[LogEntry(kind="event.status", at=T0)]))
    assert await store.read_log() == []
    got = await store.get_event("ev-1", SERVICE)
    assert got is not None and got.status is EventStatus.NEAR
    assert [e.event_id for e in await store.open_events()] == ["ev-1"]
    await store.commit(Batch(event_status=[("ev-1", EventStatus.NEAR,
                                            EventStatus.COMPLETED)]))
    assert await store.open_events() == []


async def test_event_reads_follow_the_scope_rules(store: Store) -> None:
    (v1, v2), _, empty = await world(store)
    mine = event("a-mine", aggregator_id="agg1",
                 targets=EventTargets(ven_ids=[v1.ven_id, empty.ven_id]))
    await create(store, mine, AGG1)
    svc = event("b-svc", targets=EventTargets(device_ids=["d00", "d05"]))
    await create(store, svc, SERVICE)
    lone = event("c-lone", aggregator_id="agg1", targets=EventTargets(ven_ids=[empty.ven_id]))
    await create(store, lone, AGG1)

    async def ids(scope: Scope) -> list[str]:
        return [e.event_id for e in await store.list_events(EventQuery(), scope)]

    assert await ids(SERVICE) == ["a-mine", "b-svc", "c-lone"]
    assert await ids(AGG1) == ["a-mine", "b-svc", "c-lone"]
    assert await ids(AGG2) == ["b-svc"]  # only through a delivery to its VEN
    assert await ids(ACC1) == ["a-mine", "b-svc"]
    assert await ids(ACC2) == ["b-svc"]
    assert await ids(Scope("prosumer")) == []
    assert await store.get_event("a-mine", AGG2) is None
    assert await store.get_event("a-mine", ACC2) is None
    assert await store.get_event("b-svc", ACC2) is not None
    # of any event, a tenant sees only the deliveries to its own VENs
    assert [d.ven_id for d in await store.deliveries_of_event("b-svc", AGG2)] == [v2.ven_id]
    assert [d.ven_id for d in await store.deliveries_of_event("b-svc", ACC1)] == [v1.ven_id]
    assert await store.deliveries_of_event("a-mine", AGG2) == []
    assert len(await store.deliveries_of_event("b-svc", SERVICE)) == 2


async def test_list_events_filters_and_pages(store: Store) -> None:
    (v1, v2), _, _ = await world(store)
    for i in range(5):
        targets = EventTargets(device_ids=["d01"] if i % 2 else ["d05"])
        ev = event(f"ev-{i}", dtstart=START + timedelta(hours=i), program=f"p{i % 2}",
                   aggregator_id=None if i < 3 else "agg1")
        await create(store, ev.model_copy(update={"targets": targets}), SERVICE)

    async def ids(**kw: object) -> list[str]:
        got = await store.list_events(EventQuery(**kw), SERVICE)  # type: ignore[arg-type]
        return [e.event_id for e in got]

    assert await ids(ven_id=v1.ven_id) == ["ev-1", "ev-3"]
    assert await ids(device_id="d05") == ["ev-0", "ev-2", "ev-4"]
    assert await ids(device_id="d06") == [] and await ids(device_id="nope") == []
    assert await ids(starts_after=START + timedelta(hours=1),
                     starts_before=START + timedelta(hours=3)) == ["ev-1", "ev-2"]
    assert await ids(aggregator_id="agg1") == ["ev-3", "ev-4"]
    assert await ids(program="p0", ven_id=v2.ven_id) == ["ev-0", "ev-2", "ev-4"]
    assert await ids(status=[EventStatus.FAR]) == [f"ev-{i}" for i in range(5)]
    assert await ids(status=[EventStatus.ACTIVE]) == []
    assert await ids(limit=2) == ["ev-0", "ev-1"]
    assert await ids(limit=2, after_event_id="ev-1") == ["ev-2", "ev-3"]
    agg2 = await store.list_events(EventQuery(ven_id=v1.ven_id), AGG2)
    assert agg2 == []  # the filter never widens the scope


async def test_at_most_one_distribute_marker_per_ven(open_store: Opener) -> None:
    a, b = await open_store(), await open_store()
    v = ven()
    other = msg_of(v.ven_id)
    await a.commit(Batch(vens=[v], outbox=[other]))
    await a.commit(Batch(distribute_to=[v.ven_id, v.ven_id]))
    await asyncio.gather(*(s.commit(Batch(distribute_to=[v.ven_id])) for s in (a, b) * 3))
    assert await a.pending_count(v.ven_id) == 2  # the other message and one marker
    first = await b.claim_next(v.ven_id)
    assert first is not None and first.kind == "oadrRegisterReport"
    marker = await a.claim_next(v.ven_id)
    assert marker is not None and marker.kind == DISTRIBUTE_MARKER
    assert await a.claim_next(v.ven_id) is None
    await b.commit(Batch(distribute_to=[v.ven_id]))  # claimed: the next one is owed again
    assert await a.pending_count(v.ven_id) == 1
    await a.commit(Batch(clear_outbox_of=[v.ven_id], distribute_to=[v.ven_id]))
    assert await a.pending_count(v.ven_id) == 1


def msg_of(ven_id: str):  # type: ignore[no-untyped-def]
    from tests.store.support import msg

    return msg(ven_id, 1)


async def test_events_for_ven_keeps_only_current_events(store: Store) -> None:
    (v1, v2), _, _ = await world(store)
    targets = EventTargets(ven_ids=[v1.ven_id])
    await create(store, event("done", targets=targets, recovery_s=600), SERVICE)
    await create(store, event("open", targets=targets, duration_s=0), SERVICE)
    await create(store, event("later", targets=targets, dtstart=START + timedelta(days=1)),
                 SERVICE)
    await create(store, event("theirs", targets=EventTargets(ven_ids=[v2.ven_id])), SERVICE)
    end = START + timedelta(hours=1)

    async def current(at: object) -> list[str]:
        return [e.event_id for e, _ in await store.events_for_ven(v1.ven_id, at)]  # type: ignore[arg-type]

    assert await current(T0) == ["done", "later", "open"]
    assert await current(end + timedelta(seconds=599)) == ["done", "later", "open"]
    assert await current(end + timedelta(seconds=600)) == ["later", "open"]  # recovered
    pairs = await store.events_for_ven(v1.ven_id, T0)
    assert all(d.ven_id == v1.ven_id and d.event_id == e.event_id for e, d in pairs)
    # the poll path reads the events without their targets, the rest as stored
    full = await store.get_event("done", SERVICE)
    assert full is not None and full.targets == targets
    assert pairs[0][0] == full.model_copy(update={"targets": EventTargets()})
    assert pairs[0][1].device_ids == ["d00", "d01", "d02", "d03"]
    # cancelling: kept CANCELLED_KEPT, then dropped (the deliveries follow the event)
    cancelled_at = T0 + timedelta(minutes=5)
    stored = await store.get_event("open", SERVICE)
    assert stored is not None
    await store.commit(Batch(
        events=[stored.model_copy(update={"cancelled_at": cancelled_at, "modification_number": 1,
                                          "status": EventStatus.CANCELLED})],
        event_expect=[("open", 0)]))
    assert "open" in await current(cancelled_at + CANCELLED_KEPT - timedelta(microseconds=1))
    assert "open" not in await current(cancelled_at + CANCELLED_KEPT)
    assert await store.events_for_ven("nobody", T0) == []


async def test_delivered_and_deleted_deliveries(store: Store) -> None:
    (v1, v2), _, _ = await world(store)
    await create(store, event(targets=EventTargets(ven_ids=[v1.ven_id, v2.ven_id])), SERVICE)
    at = T0 + timedelta(seconds=1, microseconds=7)
    await store.commit(Batch(delivered=[("ev-1", v1.ven_id, 0, at)]))
    got = await store.get_delivery("ev-1", v1.ven_id)
    assert got is not None and (got.delivered_mod, got.delivered_at) == (0, at)
    await store.commit(Batch(delete_deliveries=[("ev-1", v2.ven_id)]))
    assert await store.get_delivery("ev-1", v2.ven_id) is None
    assert await store.events_for_ven(v2.ven_id, T0) == []
    # upsert on (event, VEN): a new share replaces the old one
    new = share(got.model_copy(update={"device_ids": ["d01"], "resource_ids": ["r1"]}), "ev-1")
    await store.commit(Batch(deliveries=[new]))
    assert await store.deliveries_of_event("ev-1", SERVICE) == [new]


async def test_opt_answers_apply_in_place_and_none_is_lost(open_store: Opener) -> None:
    a, b = await open_store(), await open_store()
    (v1, _), _, _ = await world(a)
    await create(a, event(targets=EventTargets(ven_ids=[v1.ven_id])), SERVICE)
    at = T0 + timedelta(minutes=1)
    # racing answers from two processes, each for other resources: all of them stay
    await asyncio.gather(*(
        (a, b)[i % 2].commit(Batch(opt_answers=[
            OptAnswer("ev-1", v1.ven_id, OptType.OUT if i % 2 else OptType.IN, 0, at,
                      resource_ids=[f"r{i}"])]))
        for i in range(4)))
    await b.commit(Batch(opt_answers=[OptAnswer("ev-1", v1.ven_id, OptType.IN, 0, at)]))
    got = await a.get_delivery("ev-1", v1.ven_id)
    assert got is not None
    assert got.resource_opts == {"r0": OptType.IN, "r1": OptType.OUT, "r2": OptType.IN,
                                 "r3": OptType.OUT}
    assert (got.opt, got.opt_mod, got.opt_at) == (OptType.IN, 0, at)
    await a.commit(Batch(opt_answers=[
        OptAnswer("ev-1", v1.ven_id, OptType.OUT, 0, at, resource_ids=["r0", "r.x$"])]))
    got = await b.get_delivery("ev-1", v1.ven_id)
    assert got is not None and got.resource_opts["r0"] is OptType.OUT
    assert got.resource_opts["r.x$"] is OptType.OUT and got.opt is OptType.IN


async def test_events_survive_close_and_reopen(open_store: Opener) -> None:
    store = await open_store()
    (v1, _), _, empty = await world(store)
    await create(store, event(targets=EventTargets(ven_ids=[v1.ven_id, empty.ven_id])), AGG1)
    await store.commit(Batch(opt_answers=[OptAnswer("ev-1", v1.ven_id, OptType.IN, 0, T0)]))
    before = (await store.get_event("ev-1", SERVICE),
              await store.deliveries_of_event("ev-1", SERVICE),
              await store.events_for_ven(v1.ven_id, T0), await store.pending_count(v1.ven_id))
    await store.close()
    again = await open_store()
    after = (await again.get_event("ev-1", SERVICE),
             await again.deliveries_of_event("ev-1", SERVICE),
             await again.events_for_ven(v1.ven_id, T0), await again.pending_count(v1.ven_id))
    assert after == before and before[0] is not None and before[3] == 1


async def test_resolve_targets_over_a_thousand_ders(store: Store) -> None:
    v = ven("big", aggregator_id="agg1", account_id="acc1")
    ders: list[Der] = [der(v.ven_id, f"r{i:04}", device_id=f"dev-{i:04}",
                           aggregator_id="agg1", account_id="acc1") for i in range(1200)]
    await store.commit(Batch(vens=[v], ders=ders))
    got = await store.resolve_targets(
        EventTargets(device_ids=[d.device_id for d in ders][::-1]), AGG1)
    assert len(got) == 1 and got[0].device_ids == [d.device_id for d in ders]


async def test_retargeting_keeps_what_was_delivered_and_answered(store: Store) -> None:
    (v1, _), _, _ = await world(store)
    await create(store, event(targets=EventTargets(ven_ids=[v1.ven_id])), SERVICE)
    at = T0 + timedelta(minutes=1)
    await store.commit(Batch(delivered=[("ev-1", v1.ven_id, 0, at)], opt_answers=[
        OptAnswer("ev-1", v1.ven_id, OptType.IN, 0, at),
        OptAnswer("ev-1", v1.ven_id, OptType.OUT, 0, at, resource_ids=["r1"])]))
    # a modification re-resolves the targets: a fresh share (no answers) is upserted
    fresh = share((await store.resolve_targets(EventTargets(device_ids=["d01"]), SERVICE))[0],
                  "ev-1")
    assert fresh.opt is None and fresh.delivered_mod is None
    await store.commit(Batch(deliveries=[fresh]))
    got = await store.get_delivery("ev-1", v1.ven_id)
    assert got is not None and got.device_ids == ["d01"]
    assert (got.delivered_mod, got.opt, got.opt_mod) == (0, OptType.IN, 0)
    assert got.resource_opts == {"r1": OptType.OUT}
