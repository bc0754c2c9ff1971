"""Group dispatches: the record, its members, its events' deliveries, conditional writes.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

import asyncio

import pytest

from registry.events import EventTargets
from registry.group_dispatch import DispatchMember, DispatchSlot, GroupDispatch, MemberState
from registry.port import SERVICE, Batch, Conflict, Scope, Store
from registry.port.dispatches import DispatchQuery
from tests.store.event_support import ACC1, AGG1, AGG2, START, create, event, world
from tests.store.support import T0, Opener


def dispatch(dispatch_id: str, owner: str = "agg1", group: str = "g1", **kw: object
             ) -> GroupDispatch:
    fields: dict[str, object] = dict(
        dispatch_id=dispatch_id, group=group, aggregator_id=owner, dtstart=START,
        slots=[DispatchSlot(duration_s=900, kw=10), DispatchSlot(duration_s=900, kw=5)],
        created_at=T0, modified_at=T0)
    fields.update(kw)
    return GroupDispatch(**fields)  # type: ignore[arg-type]


def member(d: GroupDispatch, device_id: str, ven_id: str = "v", **kw: object
           ) -> DispatchMember:
    fields: dict[str, object] = dict(dispatch_id=d.dispatch_id, device_id=device_id,
                                     ven_id=ven_id, capacity_kw=2.0, assigned_kw=[1.0, 0.5])
    fields.update(kw)
    return DispatchMember(**fields)  # type: ignore[arg-type]


async def save(store: Store, d: GroupDispatch, *members: DispatchMember) -> None:
    await store.commit(Batch(dispatches=[d], dispatch_expect=[(d.dispatch_id, None)],
                             dispatch_members=list(members)))


async def test_a_dispatch_and_its_members_round_trip(store: Store) -> None:
    d = dispatch("gd-1")
    await save(store, d, member(d, "b"), member(d, "a", state=MemberState.OFFLINE,
                                                reason="offline"))
    assert await store.get_dispatch("gd-1", SERVICE) == d
    got = await store.dispatch_members("gd-1", SERVICE)
    assert [m.device_id for m in got] == ["a", "b"]
    assert got[0].state is MemberState.OFFLINE and got[0].reason == "offline"
    assert got[1].assigned_kw == [1.0, 0.5]
    assert await store.get_dispatch("nope", SERVICE) is None
    assert await store.dispatch_members("nope", SERVICE) == []


async def test_reads_are_scoped_to_the_group_owner(store: Store) -> None:
    d1, d2 = dispatch("gd-a", "agg1"), dispatch("gd-b", "agg2")
    await save(store, d1, member(d1, "x"))
    await save(store, d2, member(d2, "y"))
    assert await store.get_dispatch("gd-a", AGG1) == d1
    assert await store.get_dispatch("gd-b", AGG1) is None  # another tenant's: invisible
    assert await store.get_dispatch("gd-a", ACC1) is None  # prosumers see none
    assert await store.get_dispatch("gd-a", Scope("aggregator")) is None  # incomplete
    assert await store.dispatch_members("gd-b", AGG1) == []
    assert [m.device_id for m in await store.dispatch_members("gd-b", AGG2)] == ["y"]
    assert [x.dispatch_id for x in await store.list_dispatches(DispatchQuery(), AGG1)] == [
        "gd-a"]
    assert await store.list_dispatches(DispatchQuery(), ACC1) == []
    assert await store.list_dispatches(DispatchQuery(aggregator_id="agg2"), AGG1) == []
    assert [x.dispatch_id for x in await store.list_dispatches(DispatchQuery(), SERVICE)
            ] == ["gd-a", "gd-b"]


async def test_list_filters_and_pages(store: Store) -> None:
    for i in range(5):
        d = dispatch(f"gd-{i}", group="g1" if i % 2 else "g2", closed=i == 3)
        await save(store, d)
    q = DispatchQuery(group="g1")
    assert [d.dispatch_id for d in await store.list_dispatches(q, AGG1)] == ["gd-1", "gd-3"]
    q = DispatchQuery(group="g1", open_only=True)
    assert [d.dispatch_id for d in await store.list_dispatches(q, AGG1)] == ["gd-1"]
    page = await store.list_dispatches(DispatchQuery(limit=2), SERVICE)
    assert [d.dispatch_id for d in page] == ["gd-0", "gd-1"]
    page = await store.list_dispatches(DispatchQuery(limit=2, after_dispatch_id="gd-1"),
                                       SERVICE)
    assert [d.dispatch_id for d in page] == ["gd-2", "gd-3"]
    assert [d.dispatch_id for d in await store.open_dispatches()] == [
        "gd-0", "gd-1", "gd-2", "gd-4"]


async def test_writes_are_conditional_on_rev(store: Store) -> None:
    d = dispatch("gd-c")
    await save(store, d)
    with pytest.raises(Conflict):
        await save(store, d)  # exists already
    bumped = d.model_copy(update={"rev": 1, "redispatches": 1})
    await store.commit(Batch(dispatches=[bumped], dispatch_expect=[("gd-c", 0)],
                             dispatch_members=[member(d, "m1")]))
    stale = d.model_copy(update={"rev": 1, "redispatches": 7})
    with pytest.raises(Conflict):  # expects rev 0, it is 1: nothing of the batch is written
        await store.commit(Batch(dispatches=[stale], dispatch_expect=[("gd-c", 0)],
                                 dispatch_members=[member(d, "m2")]))
    got = await store.get_dispatch("gd-c", SERVICE)
    assert got is not None and got.redispatches == 1
    assert [m.device_id for m in await store.dispatch_members("gd-c", SERVICE)] == ["m1"]


async def test_two_processes_redispatching_one_record_commit_once(open_store: Opener) -> None:
    a, b = await open_store(), await open_store()
    d = dispatch("gd-race")
    await save(a, d)
    results = await asyncio.gather(*(
        s.commit(Batch(dispatches=[d.model_copy(update={"rev": 1, "redispatches": n})],
                       dispatch_expect=[("gd-race", 0)]))
        for n, s in ((1, a), (2, b))), return_exceptions=True)
    assert sum(isinstance(r, Conflict) for r in results) == 1, results
    got = await a.get_dispatch("gd-race", SERVICE)
    assert got is not None and got.rev == 1


async def test_deliveries_of_its_events_only(store: Store) -> None:
    (v1, v2), _, _ = await world(store)
    await create(store, event("gd-1.0", targets=EventTargets(device_ids=["d00"])), SERVICE)
    await create(store, event("gd-1.1", targets=EventTargets(device_ids=["d04"])), SERVICE)
    await create(store, event("gd-10.0", targets=EventTargets(device_ids=["d01"])), SERVICE)
    await create(store, event("gd-1", targets=EventTargets(device_ids=["d02"])), SERVICE)
    got = await store.dispatch_deliveries("gd-1")
    assert [(x.event_id, x.ven_id, x.device_ids) for x in got] == [
        ("gd-1.0", v1.ven_id, ["d00"]), ("gd-1.1", v2.ven_id, ["d04"])]
    assert await store.dispatch_deliveries("gd-2") == []


async def test_a_stale_event_expectation_writes_no_dispatch(store: Store) -> None:
    await world(store)
    await create(store, event("gd-x.0", targets=EventTargets(device_ids=["d00"])), SERVICE)
    d = dispatch("gd-x")
    with pytest.raises(Conflict):
        await store.commit(Batch(
            dispatches=[d], dispatch_expect=[("gd-x", None)], dispatch_members=[member(d, "a")],
            events=[event("gd-x.0")], event_expect=[("gd-x.0", None)]))
    assert await store.get_dispatch("gd-x", SERVICE) is None
    assert await store.dispatch_members("gd-x", SERVICE) == []


async def test_events_of_a_dispatch_in_one_range_without_targets(store: Store) -> None:
    await world(store)
    for event_id, dev in (("gd-1.0", "d00"), ("gd-1.1", "d04"), ("gd-10.0", "d01")):
        await create(store, event(event_id, targets=EventTargets(device_ids=[dev])), SERVICE)
    got = await store.dispatch_events("gd-1")
    assert [e.event_id for e in got] == ["gd-1.0", "gd-1.1"]
    assert all(e.targets == EventTargets() for e in got)  # the poll path's light read
    full = await store.get_event("gd-1.0", SERVICE)
    assert full is not None and full.targets.device_ids == ["d00"]
    assert got[0].model_copy(update={"targets": full.targets}) == full
    assert await store.dispatch_events("gd-2") == []
