"""/api/v1/dispatches over real HTTP: who may dispatch which group and see which dispatch,
and bad input as problem+json naming the field (nothing written)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from registry.models import Liveness, Ven
from registry.port import SERVICE
from registry.port.dispatches import DispatchQuery
from tests.api_support import api_server, der, seed
from tests.test_api_events import A1, A2, X1, World
from vtn.config import Config


def soon(minutes: float = 60) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def body(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"group": "street", "dtstart": soon(),
                           "slots": [{"duration_s": 900, "kw": 5}]}
    doc.update(fields)
    return doc


@pytest.fixture
async def world(config: Config) -> AsyncIterator[World]:
    async with api_server(config) as api:
        ders = [der("a1-boiler", "ven-a1", aggregator_id="A1", account_id="X1",
                    available_capacity=3000, liveness=Liveness.ONLINE),
                der("a2-ev", "ven-a2", aggregator_id="A1", account_id="X3",
                    available_capacity=7000, liveness=Liveness.ONLINE),
                der("b-boiler", "ven-b", aggregator_id="A2", account_id="X2",
                    available_capacity=5000, liveness=Liveness.ONLINE)]
        vens = [Ven(ven_id="ven-a1", ven_name="osb-a1", aggregator_id="A1", account_id="X1"),
                Ven(ven_id="ven-a2", ven_name="osb-a2", aggregator_id="A1", account_id="X3"),
                Ven(ven_id="ven-b", ven_name="osb-b", aggregator_id="A2", account_id="X2")]
        await seed(api, vens, ders)
        w = World(api, {d.device_name: d.device_id for d in ders})
        for claims in (A1, A2):
            status, doc, _ = await w.send("POST", "/groups", {"name": "street", "filters": {}},
                                          "aggregator", **claims)
            assert status == 201, doc
        yield w


async def test_an_aggregator_dispatches_its_group_and_reads_the_status(world: World) -> None:
    status, doc, headers = await world.send("POST", "/dispatches", body(dispatch_id="d1"),
                                            "aggregator", **A1)
    assert status == 201, doc
    assert headers["Location"] == "/api/v1/dispatches/d1"
    assert doc["aggregator_id"] == "A1" and doc["status_now"] == "scheduled"
    assert doc["summary"] == {"members": 2, "assigned": 2, "vens": 2}
    status, st, _ = await world.send("GET", "/dispatches/d1/status", None, "aggregator", **A1)
    assert status == 200, st
    (slot,) = st["slots"]
    assert (slot["requested_kw"], slot["assigned_kw"], slot["shortfall_kw"]) == (5, 5, 0)
    assert sorted(m["assigned_kw"][0] for m in st["members"]) == [1.5, 3.5]
    assert {m["device_id"] for m in st["members"]} == {world.ders["a1-boiler"],
                                                       world.ders["a2-ev"]}
    # the events are DR events like any other: visible to their VENs' tenants
    status, ev, _ = await world.send("GET", "/events/d1.0", None, "aggregator", **A1)
    assert status == 200 and ev["signals"][0]["signal_name"] == "LOAD_DISPATCH"


async def test_no_role_dispatches_to_or_sees_another_tenants_group(world: World) -> None:
    status, doc, _ = await world.send("POST", "/dispatches", body(dispatch_id="d1"),
                                      "aggregator", **A1)
    assert status == 201, doc
    for path in ("/dispatches/d1", "/dispatches/d1/status"):  # A2 and a prosumer: 404
        assert (await world.send("GET", path, None, "aggregator", **A2))[0] == 404
        assert (await world.send("GET", path, None, "prosumer", **X1))[0] == 404
    status, page, _ = await world.send("GET", "/dispatches", None, "aggregator", **A2)
    assert status == 200 and page["items"] == []
    status, page, _ = await world.send("GET", "/dispatches", None, "prosumer", **X1)
    assert status == 200 and page["items"] == []
    assert (await world.send("POST", "/dispatches/d1/cancel", None, "aggregator", **A2)
            )[0] == 404
    assert (await world.send("POST", "/dispatches/d1/cancel", None, "prosumer", **X1)
            )[0] == 403
    assert (await world.send("POST", "/dispatches", body(), "prosumer", **X1))[0] == 403
    # A2's "street" is its own group: its dispatch reaches only its own DER
    status, doc, _ = await world.send("POST", "/dispatches", body(dispatch_id="d2"),
                                      "aggregator", **A2)
    assert status == 201 and doc["summary"] == {"members": 1, "assigned": 1, "vens": 1}
    status, doc, _ = await world.send("POST", "/dispatches",
                                      body(dispatch_id="d3", group="A1/street"),
                                      "aggregator", **A2)
    assert status == 404, doc  # an aggregator cannot name another tenant's group
    status, doc, _ = await world.send("POST", "/dispatches",
                                      body(dispatch_id="d4", group="A1/street"))
    assert status == 201 and doc["aggregator_id"] == "A1"  # a service names the owner
    status, page, _ = await world.send("GET", "/dispatches", None, "aggregator", **A1)
    assert [d["dispatch_id"] for d in page["items"]] == ["d1", "d4"]
    status, page, _ = await world.send("GET", "/dispatches?aggregator_id=A2", None,
                                       "aggregator", **A1)
    assert status == 403
    status, page, _ = await world.send("GET", "/dispatches?aggregator_id=A2")
    assert [d["dispatch_id"] for d in page["items"]] == ["d2"]
    status, doc, _ = await world.send("POST", "/dispatches/d1/cancel", None, "aggregator",
                                      **A1)
    assert status == 200 and doc["status_now"] == "cancelled"


@pytest.mark.parametrize(("fields", "field"), [
    ({"slots": []}, "slots"),
    ({"slots": [{"duration_s": 60, "kw": -1}]}, "slots.kw"),
    ({"slots": [{"duration_s": 0, "kw": 1}]}, "slots.duration_s"),
    ({"dtstart": "2026-12-01T12:00:00"}, "dtstart"),
    ({"dtstart": "1999-12-01T12:00:00Z"}, "dtstart"),
    ({"dispatch_id": "a.b"}, "dispatch_id"),
    ({"mode": "explode"}, "mode"),
    ({"ramp_s": 1e9}, "ramp_s"),
    ({"surprise": 1}, "surprise"),
    ({"aggregator_id": "A2"}, "aggregator_id"),
    ({"rev": 3}, "rev"),
    ({"dtstart": "2000-01-01T00:00:00Z"}, "slots"),  # over before it starts
])
async def test_bad_dispatches_are_400_naming_the_field(world: World, fields: dict[str, Any],
                                                       field: str) -> None:
    status, doc, _ = await world.send("POST", "/dispatches", body(**fields), "aggregator", **A1)
    assert status == 400, doc
    assert field in [e["field"] for e in doc["errors"]], doc
    assert await world.api.served.vtn.store.open_dispatches() == []


async def test_hostile_requests_are_problems(world: World) -> None:
    for data, want in ((b"[1]", 400), (b"{", 400), (b'{"group": NaN}', 400)):
        status, _, _ = await world.send("POST", "/dispatches", role="aggregator", data=data,
                                        **A1)
        assert status == want, data
    status, _, _ = await world.send("POST", "/dispatches", role="aggregator", data=b"x",
                                    headers={"Content-Type": "text/plain"}, **A1)
    assert status == 415
    assert (await world.send("GET", "/dispatches/nope/status"))[0] == 404
    assert (await world.send("GET", "/dispatches?limit=0"))[0] == 400
    assert (await world.send("GET", "/dispatches/x/status?members=-1"))[0] == 400
    assert (await world.send("POST", "/dispatches", body(group="nope"), "aggregator", **A1)
            )[0] == 404
    status, _, _ = await world.send("POST", "/dispatches", body(dispatch_id="dup"), "aggregator",
                                    **A1)
    assert status == 201
    status, doc, _ = await world.send("POST", "/dispatches", body(dispatch_id="dup"),
                                      "aggregator", **A1)
    assert status == 409, doc
    store = world.api.served.vtn.store
    assert [d.dispatch_id for d in await store.list_dispatches(DispatchQuery(), SERVICE)] == [
        "dup"]


async def test_openapi_documents_the_dispatch_routes(world: World) -> None:
    status, spec, _ = await world.send("GET", "/openapi.json")
    assert status == 200
    for path in ("/api/v1/dispatches", "/api/v1/dispatches/{dispatch_id}/status",
                 "/api/v1/dispatches/{dispatch_id}/cancel"):
        assert path in spec["paths"], path


async def test_groups_are_named_by_id_by_name_or_all(world: World) -> None:
    status, group, _ = await world.send(
        "POST", "/groups", {"name": "boilers", "include": [world.ders["a1-boiler"]]},
        "aggregator", **A1)
    assert status == 201, group
    status, doc, _ = await world.send("POST", "/dispatches", body(
        dispatch_id="by-id", group=group["group_id"]), "aggregator", **A1)
    assert status == 201, doc
    assert doc["group"] == group["group_id"] and doc["group_name"] == "boilers"
    assert doc["summary"] == {"members": 1, "assigned": 1, "vens": 1}
    status, doc, _ = await world.send("POST", "/dispatches", body(dispatch_id="all",
                                                                  group="all"),
                                      "aggregator", **A1)
    assert status == 201 and doc["summary"]["members"] == 2, doc
    # another tenant's group id is as unknown as a made-up one
    status, doc, _ = await world.send("POST", "/dispatches", body(
        dispatch_id="x", group=group["group_id"]), "aggregator", **A2)
    assert status == 404, doc
    status, page, _ = await world.send("GET", f"/dispatches?group={group['group_id']}",
                                       None, "aggregator", **A1)
    assert [d["dispatch_id"] for d in page["items"]] == ["by-id"]
