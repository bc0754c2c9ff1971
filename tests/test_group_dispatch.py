"""Group dispatch on the real store (TEST_STORE=sqlite or mongo): the split, opt
schedules, one event per member VEN, re-dispatch after opt-outs and offline members
(also with two processes racing), cancel, connect after disconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from registry import dispatch_manager as manager
from registry import groups
from registry.dispatch_status import dispatch_status
from registry.events import EventStatus, OptSchedule, OptType, OptWindow
from registry.group_dispatch import (
    DispatchMode,
    DispatchSlot,
    GroupDispatch,
    MemberState,
)
from registry.models import Der, Liveness, Ven
from registry.port import SERVICE, Batch, OptAnswer, Scope, Store
from vtn.app import make_store
from vtn.config import Config

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
START = NOW + timedelta(minutes=10)
AGG1 = Scope("aggregator", aggregator_id="agg1")
AGG2 = Scope("aggregator", aggregator_id="agg2")
# VEN -> [(resource, available W)]; osb-c has an optOut schedule, osb-z is agg2's
FLEET = {"osb-a": [("a0", 2000), ("a1", 4000), ("a2", 6000)], "osb-b": [("b0", 4000),
         ("b1", 4000)], "osb-c": [("c0", 5000)], "osb-z": [("z0", 9000)]}


@pytest.fixture
async def store(config: Config) -> AsyncIterator[Store]:
    s = make_store(config)
    await s.open()
    yield s
    await s.close()


async def world(store: Store) -> dict[str, Ven]:
    vens = {n: Ven(ven_name=n, registered=True, aggregator_id="agg2" if n == "osb-z"
                   else "agg1", account_id=f"acc-{n}") for n in FLEET}
    ders = [Der(ven_id=vens[n].ven_id, resource_id=r, device_name=r, available_capacity=w,
                aggregator_id=vens[n].aggregator_id, account_id=vens[n].account_id,
                liveness=Liveness.ONLINE)
            for n, rs in FLEET.items() for r, w in rs]
    ders.append(Der(ven_id=vens["osb-b"].ven_id, resource_id="b9", device_name="b9",
                    available_capacity=3000, aggregator_id="agg1", account_id="acc-osb-b",
                    dr_availability=False))
    await store.commit(Batch(vens=list(vens.values()), ders=ders))
    for v in vens.values():
        await store.mark_online(v.ven_id, NOW)
    c = vens["osb-c"]
    await store.commit(Batch(opts=[OptSchedule(
        opt_id="away", ven_id=c.ven_id, aggregator_id="agg1", account_id=c.account_id,
        opt_type=OptType.OUT, opt_reason="vacation",
        windows=[OptWindow(start=NOW, duration_s=86400)])]))
    await groups.create_group(store, "agg1", "g1", filters={}, actor="test", now=NOW)
    await groups.create_group(store, "agg2", "g1", filters={}, actor="test", now=NOW)
    return vens


def request(kw: float = 12.0, **fields: object) -> GroupDispatch:
    data: dict[str, object] = dict(dispatch_id="gd1", group="g1", dtstart=START,
                                   slots=[DispatchSlot(duration_s=900, kw=kw),
                                          DispatchSlot(duration_s=900, kw=kw / 2)])
    data.update(fields)
    return GroupDispatch(**data)  # type: ignore[arg-type]


def event_ids(members: list) -> dict[str, str]:
    return {m.resource_id: m.event_id for m in members if m.event_id}


def by_resource(members: list) -> dict[str, object]:
    return {m.resource_id or m.device_id: m for m in members}


async def names(store: Store, vens: dict[str, Ven]) -> dict[str, str]:
    return {v.ven_id: n for n, v in vens.items()}


async def test_the_request_is_split_by_capacity_into_one_event_per_ven(store: Store) -> None:
    vens = await world(store)
    d, members = await manager.create_dispatch(store, request(12.0), AGG1, actor="a1",
                                               now=NOW)
    assert d.aggregator_id == "agg1" and d.rev == 0
    states = {m.resource_id or m.device_id: (m.state, m.reason) for m in members}
    # b9: dr_availability false; c0: its VEN's optOut schedule covers the dispatch
    assert sorted(s for s, _ in states.values()) == sorted(
        [MemberState.ASSIGNED] * 5 + [MemberState.UNAVAILABLE] * 2)
    out = {m.reason for m in members if m.state is MemberState.UNAVAILABLE}
    assert out == {"dr_availability false", "optOut schedule"}
    assigned = {m.resource_id: m.assigned_kw for m in members
                if m.state is MemberState.ASSIGNED}
    # 20 kW of capacity: 12 kW is 60 % of each, 6 kW 30 %
    assert assigned == {"a0": [1.2, 0.6], "a1": [2.4, 1.2], "a2": [3.6, 1.8],
                        "b0": [2.4, 1.2], "b1": [2.4, 1.2]}
    ids = event_ids(members)
    ev_a = await store.get_event(ids["a0"], SERVICE)
    ev_b = await store.get_event(ids["b0"], SERVICE)
    assert ev_a is not None and ev_b is not None and ev_a.event_id != ev_b.event_id
    assert set(ids.values()) == {"gd1.0", "gd1.1"}  # osb-c: no event
    (sig,) = ev_a.signals
    assert (sig.signal_name.value, sig.signal_type, sig.units) == ("LOAD_DISPATCH", "delta",
                                                                    "kW")
    assert [iv.value for iv in sig.intervals] == [-7.2, -3.6]
    assert [iv.value for iv in ev_b.signals[0].intervals] == [-4.8, -2.4]
    shares = {x.ven_id: x for x in await store.dispatch_deliveries("gd1")}
    assert sorted(shares[vens["osb-a"].ven_id].resource_ids) == ["a0", "a1", "a2"]
    assert sorted(shares[vens["osb-b"].ven_id].resource_ids) == ["b0", "b1"]
    for n in ("osb-a", "osb-b"):  # their distributes are queued
        assert await store.pending_count(vens[n].ven_id) == 1
    assert await store.pending_count(vens["osb-c"].ven_id) == 0


async def test_more_than_the_group_can_do_is_capped_and_shows_a_shortfall(store: Store
                                                                          ) -> None:
    await world(store)
    _, members = await manager.create_dispatch(store, request(30.0), AGG1, actor="a1",
                                               now=NOW)
    caps = {m.resource_id: m.assigned_kw for m in members if m.state is MemberState.ASSIGNED}
    assert caps["a2"] == [6.0, 6.0 * 15 / 20]
    status = await dispatch_status(store, "gd1", AGG1, NOW)
    (s0, s1) = status["slots"]
    assert (s0["requested_kw"], s0["assigned_kw"], s0["shortfall_kw"]) == (30.0, 20.0, 10.0)
    assert (s1["assigned_kw"], s1["shortfall_kw"]) == (15.0, 0.0)
    assert s0["opted_in_kw"] == 0 and s0["measured_kw"] is None
    assert status["totals"]["responses"] == {"pending": 5}


async def test_an_opt_out_is_redispatched_to_the_others(store: Store) -> None:
    vens = await world(store)
    _, members = await manager.create_dispatch(store, request(12.0), AGG1, actor="a1",
                                               now=NOW)
    ids = event_ids(members)
    ea, eb = ids["a0"], ids["b0"]
    a, b = vens["osb-a"].ven_id, vens["osb-b"].ven_id
    await store.commit(Batch(delivered=[(ea, a, 0, NOW), (eb, b, 0, NOW)],
                             opt_answers=[OptAnswer(ea, a, OptType.IN, 0, NOW),
                                          OptAnswer(eb, b, OptType.OUT, 0, NOW)]))
    assert await store.pending_count(a) == 1
    d = await store.get_dispatch("gd1", SERVICE)
    assert d is not None
    assert await manager.redispatch(store, d, NOW + timedelta(seconds=5))
    assert not await manager.redispatch(store, (await store.get_dispatch("gd1", SERVICE)),
                                        NOW + timedelta(seconds=6))  # nothing new
    members = by_resource(await store.dispatch_members("gd1", SERVICE))
    assert members["b0"].state is MemberState.OPTED_OUT  # type: ignore[attr-defined]
    # osb-a's 12 kW of capacity takes the whole 12 kW, then 6 kW
    assert [members[r].assigned_kw for r in ("a0", "a1", "a2")] == [  # type: ignore[attr-defined]
        [2.0, 1.0], [4.0, 2.0], [6.0, 3.0]]
    ev_a = await store.get_event(ea, SERVICE)
    assert ev_a is not None and ev_a.modification_number == 1
    assert [iv.value for iv in ev_a.signals[0].intervals] == [-12.0, -6.0]
    ev_b = await store.get_event(eb, SERVICE)
    assert ev_b is not None and ev_b.modification_number == 0  # left as answered
    status = await dispatch_status(store, "gd1", AGG1, NOW + timedelta(seconds=7))
    assert status["redispatches"] == 1 and status["rev"] == 1
    assert status["slots"][0]["assigned_kw"] == 12.0
    # osb-a's optIn stands until it has been sent the new share ...
    assert status["slots"][0]["opted_in_kw"] == 12.0
    assert status["totals"]["states"] == {"assigned": 3, "opted_out": 2, "unavailable": 2}
    await store.commit(Batch(delivered=[(ea, a, 1, NOW)]))
    status = await dispatch_status(store, "gd1", AGG1, NOW + timedelta(seconds=8))
    assert status["slots"][0]["opted_in_kw"] == 0.0  # ... then it must answer that
    assert status["totals"]["responses"] == {"no response": 3, "optOut": 2}
    await store.commit(Batch(opt_answers=[OptAnswer(ea, a, OptType.IN, 1, NOW)]))
    status = await dispatch_status(store, "gd1", AGG1, NOW + timedelta(seconds=9))
    assert status["slots"][0]["opted_in_kw"] == 12.0


async def test_members_going_offline_are_redispatched_and_a_ven_left_empty_is_cancelled(
        store: Store) -> None:
    vens = await world(store)
    _, members = await manager.create_dispatch(store, request(12.0), AGG1, actor="a1",
                                               now=NOW)
    ids = event_ids(members)
    later = NOW + timedelta(hours=1)
    await store.touch({v.ven_id: later for n, v in vens.items() if n != "osb-b"})
    await store.sweep_liveness(later, 2, 3)
    d = await store.get_dispatch("gd1", SERVICE)
    assert d is not None
    assert await manager.redispatch(store, d, NOW + timedelta(seconds=5))
    members = by_resource(await store.dispatch_members("gd1", SERVICE))
    assert members["b1"].state is MemberState.OFFLINE  # type: ignore[attr-defined]
    ev_b = await store.get_event(ids["b0"], SERVICE)
    assert ev_b is not None and ev_b.status is EventStatus.CANCELLED
    ev_a = await store.get_event(ids["a0"], SERVICE)
    assert ev_a is not None and [iv.value for iv in ev_a.signals[0].intervals] == [-12.0, -6.0]


async def test_two_processes_redispatch_once(config: Config, store: Store) -> None:
    vens = await world(store)
    other = make_store(config)
    await other.open()
    try:
        _, members = await manager.create_dispatch(store, request(12.0), AGG1, actor="a1",
                                                   now=NOW)
        ids = event_ids(members)
        b = vens["osb-b"].ven_id
        await store.commit(Batch(opt_answers=[OptAnswer(ids["b0"], b, OptType.OUT, 0, NOW)]))
        d = await store.get_dispatch("gd1", SERVICE)
        assert d is not None
        later = NOW + timedelta(seconds=5)
        done = await asyncio.gather(manager.redispatch(store, d, later),
                                    manager.redispatch(other, d, later))
        assert sorted(done) == [False, True]
        ev_a = await store.get_event(ids["a0"], SERVICE)
        assert ev_a is not None and ev_a.modification_number == 1
        got = await store.get_dispatch("gd1", SERVICE)
        assert got is not None and got.rev == 1 and got.redispatches == 1
    finally:
        await other.close()


async def test_cancel_cancels_every_event_and_is_idempotent(store: Store) -> None:
    await world(store)
    await manager.create_dispatch(store, request(12.0), AGG1, actor="a1", now=NOW)
    with pytest.raises(manager.EventForbidden):
        await manager.cancel_dispatch(store, "gd1", Scope("prosumer", account_id="x"),
                                      actor="p", now=NOW)
    with pytest.raises(manager.EventNotFound):  # another tenant's dispatch is invisible
        await manager.cancel_dispatch(store, "gd1", AGG2, actor="x", now=NOW)
    d = await manager.cancel_dispatch(store, "gd1", AGG1, actor="a1", now=NOW)
    assert d.status_at(NOW) .value == "cancelled"
    for event_id in ("gd1.0", "gd1.1"):
        ev = await store.get_event(event_id, SERVICE)
        assert ev is not None and ev.cancelled_at == NOW and ev.modification_number == 1
    again = await manager.cancel_dispatch(store, "gd1", AGG1, actor="a1", now=NOW)
    assert again.rev == d.rev
    assert not await manager.redispatch(store, again, NOW)  # closes it
    assert [x.dispatch_id for x in await store.open_dispatches()] == []


async def test_groups_and_dispatches_stay_inside_the_tenant(store: Store) -> None:
    await world(store)
    with pytest.raises(manager.EventNotFound):
        await manager.create_dispatch(store, request(group="nope"), AGG1, actor="a", now=NOW)
    with pytest.raises(manager.EventForbidden):
        await manager.create_dispatch(store, request(), Scope("prosumer", account_id="x"),
                                      actor="p", now=NOW)
    _, members = await manager.create_dispatch(store, request(dispatch_id="z"), AGG2,
                                               actor="a2", now=NOW)
    assert {m.resource_id for m in members} == {"z0"}  # agg2's g1 is agg2's DERs only
    _, members = await manager.create_dispatch(store, request(dispatch_id="s", group="agg1/g1"),
                                               SERVICE, actor="svc", now=NOW)
    assert "z0" not in {m.resource_id for m in members}
    assert await store.get_dispatch("z", AGG1) is None
    assert (await store.get_dispatch("s", AGG1)).aggregator_id == "agg1"  # type: ignore[union-attr]
    with pytest.raises(manager.EventConflict):
        await manager.create_dispatch(store, request(dispatch_id="z"), AGG2, actor="a2",
                                      now=NOW)


async def test_connect_ends_the_groups_disconnect(store: Store) -> None:
    await world(store)
    await manager.create_dispatch(store, request(dispatch_id="off", mode=DispatchMode.DISCONNECT,
                                                 slots=[DispatchSlot(duration_s=3600)]),
                                  AGG1, actor="a1", now=NOW)
    off = await store.get_event("off.0", SERVICE)
    assert off is not None
    assert [(s.signal_name.value, s.signal_type, [iv.value for iv in s.intervals])
            for s in off.signals] == [("LOAD_CONTROL", "x-loadControlCapacity", [0.0]),
                                     ("SIMPLE", "level", [3.0])]
    at = START + timedelta(minutes=5)
    await manager.create_dispatch(store, request(dispatch_id="on", mode=DispatchMode.CONNECT,
                                                 dtstart=at, ramp_s=120,
                                                 slots=[DispatchSlot(duration_s=120)]),
                                  AGG1, actor="a1", now=at)
    off = await store.get_event("off.0", SERVICE)
    assert off is not None and off.cancelled_at == at
    assert (await store.get_dispatch("off", AGG1)).cancelled_at == at  # type: ignore[union-attr]
    on = await store.get_event("on.0", SERVICE)
    assert on is not None and on.recovery_s == 120
    (cap,) = on.signals
    assert [(iv.duration_s, iv.value) for iv in cap.intervals] == [
        (30.0, 0.25), (30.0, 0.5), (30.0, 0.75), (30.0, 1.0)]
