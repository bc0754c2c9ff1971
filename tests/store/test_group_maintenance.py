"""registry.groups and registry.group_status over both stores: maintenance with
versions and one log entry per change, group_members (the dispatch contract), the
roll-up's event and opt counts, the forecast formula."""

from __future__ import annotations

from datetime import timedelta

import pytest

from registry import group_status, groups
from registry.discovery import LogQuery
from registry.events import EventDelivery, OptType
from registry.port import SERVICE, Batch, Conflict, Store
from tests.store.event_support import event, schedule
from tests.store.support import T0
from tests.store.test_groups import A1, A2, two_tenants

NOW = T0 + timedelta(minutes=30)


async def test_maintenance_is_versioned_and_logged_once_per_change(store: Store) -> None:
    await two_tenants(store)
    g = await groups.create_group(store, "A1", "evs", filters={"device_class": "evCharger"},
                                  exclude=["d02"], actor="op", now=T0)
    assert g.filters == {"device_class": ["evCharger"]}  # normalised
    assert [m.device_id for m in await groups.group_members(store, A1, g.group_id)] == [
        "d00", "d01"]
    assert await groups.group_members(store, A2, g.group_id) == []  # not A2's group
    assert [m.device_id for m in await groups.group_members(store, A1, "evs")] == [
        "d00", "d01"]  # by name within the caller's tenant
    with pytest.raises(groups.GroupError):
        await groups.change_members(store, g, include=["d10"], if_version=None, actor="op",
                                    now=T0)  # A2's DER
    g2, done = await groups.change_members(store, g, include=["d02", "d05"],
                                           remove=["d04"], if_version=1, actor="op", now=T0)
    assert (done, g2.version, g2.includes, g2.excludes) == (
        {"included": ["d02", "d05"], "excluded": [], "removed": []}, 2, 2, 0)
    same, nothing = await groups.change_members(store, g2, include=["d05"], if_version=None,
                                                actor="op", now=T0)
    assert same.version == 2 and not any(nothing.values())  # no change, no entry
    with pytest.raises(Conflict):  # stale
        await groups.update_group(store, g, {"description": "x"}, if_version=1,
                                  actor="op", now=T0)
    with pytest.raises(groups.GroupError):
        await groups.update_group(store, g2, {"filters": {"colour": "red"}}, if_version=None,
                                  actor="op", now=T0)
    g3 = await groups.update_group(store, g2, {"filters": None}, if_version=2, actor="op",
                                   now=T0)
    assert [m.device_id for m in await groups.group_members(store, A1, g3.group_id)] == [
        "d02", "d05"]
    with pytest.raises(groups.ReservedName):
        await groups.create_group(store, "A1", "all", actor="op", now=T0)
    await groups.delete_group(store, g3, if_version=3, actor="op", now=T0)
    log = await store.find_log(LogQuery(kind=["group.created", "group.members",
                                              "group.changed", "group.deleted"]), A1)
    assert [e.kind for e in log] == ["group.created", "group.members", "group.changed",
                                     "group.deleted"]
    assert log[1].data["device_ids"] == {"included": ["d02", "d05"]}
    assert await store.find_log(LogQuery(kind=["group.created"]), A2) == []


async def test_rollup_counts_events_and_opts_and_the_forecast_follows_them(
        store: Store) -> None:
    await two_tenants(store)
    v1 = (await store.find_ven_by_name("osb-a1"))
    assert v1 is not None
    g = await groups.create_group(store, "A1", "mine", filters={}, actor="op", now=T0)
    # an event active from T0 for an hour on d00 and d03; d03's VEN opted d03 out of it
    ev = event("ev-1", dtstart=T0, duration_s=3600)
    share = EventDelivery(event_id="ev-1", ven_id=v1.ven_id, aggregator_id="A1",
                          device_ids=["d00", "d03"], resource_ids=["r0", "r3"],
                          resource_opts={"r3": OptType.OUT})
    # d04 opted out (availability) from T0+1h for an hour
    out = schedule(v1, "o1", (T0 + timedelta(hours=1), 3600.0),
                   devices=[await store.get_der("d04", SERVICE)])  # type: ignore[list-item]
    await store.commit(Batch(events=[ev], event_expect=[("ev-1", None)], deliveries=[share],
                             opts=[out]))
    r = await group_status.rollup(store, g, A1, NOW)
    assert (r.members, r.liveness["offline"], r.in_active_event, r.opted_out_now) == (
        6, 1, 1, 0)
    assert (r.by_class["evCharger"].members, r.by_class["hvacDevice"].max_capacity_w) == (
        3, 4000.0 + 5000.0 + 6000.0)
    later = await group_status.rollup(store, g, A1, T0 + timedelta(minutes=90))
    assert (later.in_active_event, later.opted_out_now) == (0, 1)
    f = await group_status.forecast(store, g, A1, T0, timedelta(hours=3), timedelta(hours=1))
    # 5 online members x 500 W; d00 in the event the first hour, d04 out the second
    assert [s["available_w"] for s in f["slots"]] == [2000.0, 2000.0, 2500.0]
    assert [(s["committed_w"], s["opted_out_w"]) for s in f["slots"]] == [
        (500.0, 0.0), (0.0, 500.0), (0.0, 0.0)]
    with pytest.raises(group_status.ForecastError):
        await group_status.forecast(store, g, A1, T0, timedelta(days=30),
                                    timedelta(minutes=1))
