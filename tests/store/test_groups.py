"""DER groups in the store: records, static members, member pages, scope, migration.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from registry.group_model import Group, MemberKind, migrated_group_id
from registry.port import SERVICE, Batch, Conflict, NameTaken, Scope, Store
from tests.store.support import T0, Opener, der, seed, ven

A1 = Scope("aggregator", aggregator_id="A1")
A2 = Scope("aggregator", aggregator_id="A2")
PROSUMER = Scope("prosumer", account_id="acc-1")


async def two_tenants(store: Store) -> None:
    """A1 owns d00..d05 (d00-d02 EV chargers, d01 offline), A2 owns d10..d13."""
    v1, v2 = ven("osb-a1", aggregator_id="A1"), ven("osb-a2", aggregator_id="A2")
    ders = [der(v1.ven_id, f"r{i}", device_id=f"d0{i}", aggregator_id="A1",
                account_id="acc-1", device_class="evCharger" if i < 3 else "hvacDevice",
                liveness="offline" if i == 1 else "online", max_capacity=1000.0 * (i + 1),
                available_capacity=500.0) for i in range(6)]
    ders += [der(v2.ven_id, f"r{i}", device_id=f"d1{i}", aggregator_id="A2",
                 device_class="evCharger") for i in range(4)]
    await seed(store, v1, v2, ders=ders)


async def ids(store: Store, group: Group, scope: Scope, page: int = 1000) -> list[str]:
    out: list[str] = []
    after = None
    while True:
        rows = await store.group_page(group, scope, after, page)
        out += [r.device_id for r in rows]
        if len(rows) < page:
            return out
        after = rows[-1].device_id


async def test_records_are_scoped_versioned_and_unique_per_owner(store: Store) -> None:
    a = Group(aggregator_id="A1", name="evs", filters={})
    b = Group(aggregator_id="A2", name="evs", filters={})
    mine = Group(name="fleet", filters=None)  # the service's own
    await store.commit(Batch(groups=[(a, None), (b, None), (mine, None)]))
    assert [g.name for g in await store.list_groups(A1)] == ["evs"]
    assert await store.list_groups(A1, "A2") == []  # never another aggregator's
    assert await store.list_groups(PROSUMER) == []
    assert [(g.aggregator_id, g.name) for g in await store.list_groups(SERVICE)] == [
        (None, "fleet"), ("A1", "evs"), ("A2", "evs")]
    assert [g.name for g in await store.list_groups(SERVICE, "")] == ["fleet"]
    assert await store.get_group(b.group_id, A1) is None  # not revealed
    assert await store.get_group(mine.group_id, A1) is None
    assert await store.get_group(b.group_id, SERVICE) == b
    assert await store.group_named("A2", "evs", A2) == b
    assert await store.group_named("A2", "evs", A1) is None
    assert await store.group_named(None, "fleet", SERVICE) == mine
    # a second group of the same name, or a stale version, writes nothing
    with pytest.raises(NameTaken):
        await store.commit(Batch(groups=[(Group(aggregator_id="A1", name="evs"), None)]))
    newer = a.model_copy(update={"version": 2, "description": "v2"})
    await store.commit(Batch(groups=[(newer, 1)]))
    with pytest.raises(Conflict):
        await store.commit(Batch(groups=[(a.model_copy(update={"version": 2}), 1)]))
    renamed = newer.model_copy(update={"version": 3, "name": "evs"})
    await store.commit(Batch(groups=[(renamed, 2)]))
    with pytest.raises(NameTaken):  # rename onto a taken name
        await store.commit(Batch(groups=[(mine.model_copy(update={"version": 2,
                                                                 "name": "fleet2"}), 1),
                                         (Group(name="fleet2"), None)]))
    assert (await store.get_group(a.group_id, A1)).description == "v2"  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        await store.commit(Batch(delete_groups=[(a.group_id, 1)]))
    await store.commit(Batch(delete_groups=[(a.group_id, 3)]))
    assert await store.get_group(a.group_id, SERVICE) is None


async def test_members_are_filter_plus_includes_minus_excludes_in_the_owner_scope(
        store: Store) -> None:
    await two_tenants(store)
    g = Group(aggregator_id="A1", name="evs", filters={"device_class": ["evCharger"]})
    await store.commit(Batch(groups=[(g, None)], group_members=[
        (g.group_id, "d04", MemberKind.INCLUDE), (g.group_id, "d02", MemberKind.EXCLUDE),
        (g.group_id, "d10", MemberKind.INCLUDE)]))  # another tenant's: never a member
    assert await ids(store, g, A1) == ["d00", "d01", "d04"]
    assert await ids(store, g, SERVICE, page=2) == ["d00", "d01", "d04"]
    assert await ids(store, g, A2) == []  # the caller's scope applies too
    assert await ids(store, g, PROSUMER) == ["d00", "d01", "d04"]  # acc-1's DERs
    # a filter naming the other tenant still reads inside the owner's scope
    theirs = Group(aggregator_id="A1", name="theirs", filters={"aggregator_id": ["A2"]})
    await store.commit(Batch(groups=[(theirs, None)]))
    assert await ids(store, theirs, SERVICE) == []
    # static only; member switches kind; removal
    static = Group(aggregator_id="A1", name="static", filters=None)
    await store.commit(Batch(groups=[(static, None)], group_members=[
        (static.group_id, d, MemberKind.INCLUDE) for d in ("d03", "d05", "d11")]))
    assert await ids(store, static, SERVICE) == ["d03", "d05"]
    await store.commit(Batch(group_members=[(static.group_id, "d03", MemberKind.EXCLUDE),
                                            (static.group_id, "d05", None)]))
    assert await ids(store, static, SERVICE) == []
    assert await store.group_static(static.group_id, MemberKind.INCLUDE) == ["d11"]
    assert await store.group_static(static.group_id, MemberKind.EXCLUDE) == ["d03"]
    assert await store.group_static(static.group_id, MemberKind.INCLUDE, "d11") == []
    # a service group sees every tenant
    everyone = Group(name="all-evs", filters={"device_class": ["evCharger"]})
    await store.commit(Batch(groups=[(everyone, None)]))
    assert await ids(store, everyone, SERVICE) == ["d00", "d01", "d02", "d10", "d11", "d12",
                                                   "d13"]
    # member rows carry what roll-up and dispatch need
    row = (await store.group_page(g, A1, None, 1))[0]
    assert (row.device_id, row.ven_id, row.aggregator_id, row.device_class, row.device_type,
            row.liveness, row.dr_availability, row.max_capacity, row.available_capacity) == (
        "d00", row.ven_id, "A1", "evCharger", "Demand", "online", True, 1000.0, 500.0)
    briefs = await store.group_briefs(g, A1)
    assert [(b.device_id, b.liveness) for b in briefs] == [
        ("d00", "online"), ("d01", "offline"), ("d04", "online")]
    # deleting the group drops its static members
    await store.commit(Batch(delete_groups=[(static.group_id, None)]))
    assert await store.group_static(static.group_id, MemberKind.INCLUDE) == []


async def test_geo_and_available_at_filters_hold_with_includes(store: Store) -> None:
    v = ven("osb-geo", aggregator_id="A1")
    near = [der(v.ven_id, f"g{i}", device_id=f"g{i}", aggregator_id="A1",
                location={"lat": 50.0 + i * 0.1, "lon": 4.0}) for i in range(4)]
    await seed(store, v, ders=near)
    g = Group(aggregator_id="A1", name="near",
              filters={"near": [50.0, 4.0], "radius_m": 12_000})
    await store.commit(Batch(groups=[(g, None)], group_members=[
        (g.group_id, "g3", MemberKind.INCLUDE)]))
    assert await ids(store, g, SERVICE) == ["g0", "g1", "g3"]


async def test_visible_device_ids_are_scoped(store: Store) -> None:
    await two_tenants(store)
    assert await store.visible_device_ids(["d00", "d10", "nope"], A1) == {"d00"}
    assert await store.visible_device_ids(["d00", "d10"], SERVICE) == {"d00", "d10"}


async def test_views_of_an_older_store_become_groups(open_store: Opener, tmp_path) -> None:
    first = await open_store()
    view = {"aggregator_id": "A1", "name": "dhw", "filters": {"device_class": ["dhwDevice"]},
            "description": "hot water", "created_at": T0.isoformat(),
            "updated_at": T0.isoformat()}
    if hasattr(first, "conn"):  # MongoDB: the views collection as today's code wrote it
        await first.col("views").insert_one({**view, "_id": "A1/dhw"})  # type: ignore[attr-defined]
    else:  # SQLite: the views table as the code before groups created it
        db = sqlite3.connect(first.path)  # type: ignore[attr-defined]
        db.execute("CREATE TABLE views (aggregator_id TEXT NOT NULL, name TEXT NOT NULL, "
                   "doc TEXT NOT NULL, PRIMARY KEY (aggregator_id, name)) WITHOUT ROWID")
        db.execute("INSERT INTO views VALUES (?, ?, ?)", ("A1", "dhw", json.dumps(view)))
        db.commit()
        db.close()
    again = await open_store()  # opening migrates
    third = await open_store()  # and a second opener finds nothing left to move
    for s in (again, third):
        [group] = await s.list_groups(A1)
        assert (group.group_id, group.name, group.filters, group.description, group.version,
                group.created_at) == (migrated_group_id("A1", "dhw"), "dhw",
                                      {"device_class": ["dhwDevice"]}, "hot water", 1, T0)


async def test_tally_counts_members_per_kind_inside_the_scopes(store: Store) -> None:
    await two_tenants(store)
    g = Group(aggregator_id="A1", name="evs", filters={"device_class": ["evCharger"]})
    static = Group(aggregator_id="A1", name="static", filters=None)
    await store.commit(Batch(groups=[(g, None), (static, None)], group_members=[
        (g.group_id, "d04", MemberKind.INCLUDE), (g.group_id, "d10", MemberKind.INCLUDE),
        (static.group_id, "d05", MemberKind.INCLUDE),
        (static.group_id, "d11", MemberKind.INCLUDE)]))
    rows = await store.group_tally(g, A1, {"d00", "d04", "d10"}, {"nobody"}, {"d01"})
    got = sorted((r.device_class, r.liveness, r.dr_available, r.members, r.max_capacity_w,
                  r.available_capacity_w, r.in_event, r.opted_out) for r in rows)
    assert got == [
        ("evCharger", "offline", True, 1, 2000.0, 500.0, 0, 1),
        ("evCharger", "online", True, 2, 4000.0, 1000.0, 1, 0),
        ("hvacDevice", "online", True, 1, 5000.0, 500.0, 1, 0),
    ]
    assert await store.group_tally(g, A2, set(), set(), set()) == []
    [row] = await store.group_tally(static, SERVICE, set(), set(), set())
    assert (row.members, row.max_capacity_w) == (1, 6000.0)  # d11 is A2's
