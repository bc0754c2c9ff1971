"""DR events over the side API (/api/v1/events, /api/v1/opts): real HTTP on loopback,
the real app and store. Tenant A (aggregator A1) has VENs ven-a1 (account X1) and ven-a2
(account X3); tenant B (A2) has ven-b (account X2)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from registry.events import OptSchedule, OptType, OptWindow
from registry.models import Ven
from registry.port import Batch, OptAnswer
from tests.api_support import Api, api_server, der, seed
from vtn.config import Config

A1 = {"aggregator_id": "A1"}
A2 = {"aggregator_id": "A2"}
X1 = {"account_id": "X1"}
X2 = {"account_id": "X2"}


@dataclass
class World:
    api: Api
    ders: dict[str, str]  # name -> device_id

    async def send(self, method: str, path: str, body: Any = None, role: str = "service",
                   headers: dict[str, str] | None = None, data: bytes | None = None,
                   **claims: Any) -> tuple[int, Any, Any]:
        h = {**self.api.headers(role, **claims), **(headers or {})}
        kw: dict[str, Any] = {"data": data} if data is not None else (
            {"json": body} if body is not None else {})
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        async with self.api.session.request(method, self.api.base + path, headers=h,
                                            **kw) as r:
            text = await r.text()
            try:
                doc = json.loads(text) if text else None
            except ValueError:
                doc = text
            if r.status >= 400:
                assert r.content_type == "application/problem+json", (r.status, text)
            return r.status, doc, r.headers.copy()

    async def create(self, role: str = "service", **fields: Any) -> tuple[int, Any, dict]:
        claims = {k: fields.pop(k) for k in ("aggregator_id", "account_id") if k in fields}
        return await self.send("POST", "/events", event(**fields), role, **claims)


def soon(minutes: float = 60) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def event(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "program": "peak",
        "dtstart": soon(),
        "signals": [{"signal_name": "SIMPLE", "signal_type": "level",
                     "intervals": [{"duration_s": 900, "value": 1},
                                   {"duration_s": 900, "value": 2}]}],
        "targets": {"ven_ids": ["ven-a1"]},
    }
    body.update(fields)
    return body


@pytest.fixture
async def world(config: Config) -> AsyncIterator[World]:
    async with api_server(config) as api:
        ders = [der("a1-boiler", "ven-a1", aggregator_id="A1", account_id="X1"),
                der("a1-pv", "ven-a1", aggregator_id="A1", account_id="X1"),
                der("a2-ev", "ven-a2", aggregator_id="A1", account_id="X3"),
                der("b-boiler", "ven-b", aggregator_id="A2", account_id="X2")]
        vens = [Ven(ven_id="ven-a1", ven_name="osb-a1", aggregator_id="A1", account_id="X1"),
                Ven(ven_id="ven-a2", ven_name="osb-a2", aggregator_id="A1", account_id="X3"),
                Ven(ven_id="ven-b", ven_name="osb-b", aggregator_id="A2", account_id="X2")]
        await seed(api, vens, ders)
        yield World(api, {d.device_name: d.device_id for d in ders})


async def test_dispatch_answers_201_with_location_etag_and_summary(world: World) -> None:
    status, body, headers = await world.create(
        event_id="ev-1", targets={"ven_ids": ["ven-a1"], "device_ids": [world.ders["b-boiler"]]})
    assert status == 201, body
    assert headers["Location"].endswith("/api/v1/events/ev-1")
    assert headers["ETag"] == '"0"'
    assert body["summary"] == {"vens": 2, "ders": 3}
    assert body["duration_s"] == 1800  # the sum of the first signal's intervals
    assert body["modification_number"] == 0 and body["status_now"] == "far"
    assert body["created_by"] == "service" and body["aggregator_id"] is None
    assert body["signals"][0]["signal_id"] == "sig-0"
    status, got, headers = await world.send("GET", "/events/ev-1")
    assert status == 200 and headers["ETag"] == '"0"'
    assert [v["signal_id"] for v in got["values_now"]] == ["sig-0"]
    assert got["values_now"][0]["value"] == 0  # not active yet
    by_ven = {d["ven_id"]: d for d in got["deliveries"]}
    assert set(by_ven) == {"ven-a1", "ven-b"}
    assert sorted(by_ven["ven-a1"]["ders"]) == sorted([world.ders["a1-boiler"],
                                                       world.ders["a1-pv"]])
    assert {d["response"] for d in got["deliveries"]} == {"pending"}
    assert got["totals"] == {"vens": 2, "ders": 3, "opted_in": 0, "opted_out": 0,
                             "no_response": 0, "not_required": 0, "pending": 2}
    _, log, _ = await world.send("GET", "/log?kind=event.created")
    assert [e["data"]["event_id"] for e in log["items"]] == ["ev-1"]


async def test_responses_follow_deliveries_and_opts_at_the_current_modification(
    world: World
) -> None:
    await world.create(event_id="ev-r", targets={"ven_ids": ["ven-a1", "ven-a2", "ven-b"]})
    now = datetime.now(UTC)
    store = world.api.served.vtn.store
    await store.commit(Batch(
        delivered=[("ev-r", "ven-a1", 0, now), ("ev-r", "ven-a2", 0, now)],
        opt_answers=[OptAnswer("ev-r", "ven-a1", OptType.IN, 0, now)],
    ))
    _, got, _ = await world.send("GET", "/events/ev-r")
    responses = {d["ven_id"]: d["response"] for d in got["deliveries"]}
    assert responses == {"ven-a1": "optIn", "ven-a2": "no response", "ven-b": "pending"}
    assert got["totals"]["opted_in"] == 1 and got["totals"]["no_response"] == 1
    assert got["totals"]["pending"] == 1
    # the prosumer of ven-a1 sees its own delivery only, the aggregator both of its own
    _, mine, _ = await world.send("GET", "/events/ev-r", role="prosumer", **X1)
    assert [d["ven_id"] for d in mine["deliveries"]] == ["ven-a1"]
    assert mine["totals"]["vens"] == 1
    _, a1, _ = await world.send("GET", "/events/ev-r", role="aggregator", **A1)
    assert sorted(d["ven_id"] for d in a1["deliveries"]) == ["ven-a1", "ven-a2"]
    # a modification makes every answer stale until the VENs have it again
    status, _, _ = await world.send("PATCH", "/events/ev-r", {"priority": 1},
                                    headers={"If-Match": '"0"'})
    assert status == 200
    _, got, _ = await world.send("GET", "/events/ev-r")
    assert {d["response"] for d in got["deliveries"]} == {"pending"}
    await store.commit(Batch(delivered=[("ev-r", "ven-a1", 1, now)],
                             opt_answers=[OptAnswer("ev-r", "ven-a1", OptType.OUT, 1, now)]))
    _, got, _ = await world.send("GET", "/events/ev-r")
    assert {d["ven_id"]: d["response"] for d in got["deliveries"]}["ven-a1"] == "optOut"


async def test_without_response_required_a_silent_ven_is_not_required(world: World) -> None:
    await world.create(event_id="ev-n", response_required=False)
    now = datetime.now(UTC)
    await world.api.served.vtn.store.commit(Batch(delivered=[("ev-n", "ven-a1", 0, now)]))
    _, got, _ = await world.send("GET", "/events/ev-n")
    assert got["deliveries"][0]["response"] == "not required"
    assert got["totals"]["not_required"] == 1


SIMPLE = {"signal_name": "SIMPLE", "signal_type": "level",
          "intervals": [{"duration_s": 600, "value": 1}]}


@pytest.mark.parametrize("fields, field", [
    ({"program": ""}, "program"),
    ({"dtstart": "0001-01-01T00:00:00Z"}, "dtstart"),
    ({"dtstart": "2026-11-23T12:00:00"}, "dtstart"),  # no time zone
    ({"dtstart": "tomorrow"}, "dtstart"),
    ({"priority": 10**30}, "priority"),
    ({"duration_s": 10**30}, "duration_s"),
    ({"duration_s": 60}, "signals"),  # the intervals last 1800 s
    ({"ramp_up_s": -1}, "ramp_up_s"),
    ({"signals": []}, "signals"),
    ({"signals": [{**SIMPLE, "intervals": [{"duration_s": 600, "value": 7}]}]}, "signals"),
    ({"signals": [{**SIMPLE, "signal_type": "price"}]}, "signals"),
    ({"signals": [{**SIMPLE, "signal_name": "LOUDNESS"}]}, "signals.signal_name"),
    ({"signals": [{**SIMPLE, "units": "W", "item_kind": "furlongs"}]}, "signals.item_kind"),
    ({"signals": [SIMPLE, {**SIMPLE, "duration_s": 1}]}, "signals.duration_s"),
    ({"signals": [{**SIMPLE, "signal_id": "x"}, {**SIMPLE, "signal_id": "x"}]}, "signals"),
    ({"targets": {}}, "targets"),
    ({"targets": {"ven_ids": ["nope"]}}, "targets.ven_ids"),
    ({"targets": {"ven_id": ["ven-a1"]}}, "targets.ven_id"),
    ({"event_id": "has/slash"}, "event_id"),
    ({"modification_number": 3}, "modification_number"),
    ({"status": "active"}, "status"),
    ({"created_by": "mallory"}, "created_by"),
    ({"aggregator_id": "A2"}, "aggregator_id"),
    ({"colour": "red"}, "colour"),
])
async def test_bad_events_are_400_naming_the_field(world: World, fields: dict[str, Any],
                                                   field: str) -> None:
    status, body, _ = await world.send("POST", "/events", event(**fields))
    assert status == 400, body
    assert body["errors"][0]["field"] == field, body
    _, page, _ = await world.send("GET", "/events")
    assert page["items"] == []


@pytest.mark.parametrize("data, status, field", [
    (b"[" * 100_000 + b"]" * 100_000, 400, "body"),  # nested 100k deep
    (b'{"program": NaN}', 400, "body"),
    (b'{"duration_s": 1e400}', 400, "body"),
    (b'{"priority": ' + b"9" * 5000 + b"}", 400, "body"),
    (b"\xff\xfe not utf-8", 400, "body"),
    (b"[1, 2]", 400, "body"),
    (b"", 400, "body"),
])
async def test_hostile_bodies_are_problems_never_500(world: World, data: bytes, status: int,
                                                     field: str) -> None:
    got, body, _ = await world.send("POST", "/events", data=data)
    assert got == status, body
    assert body["errors"][0]["field"] == field


async def test_body_over_the_limit_is_413_and_other_types_415(world: World) -> None:
    huge = json.dumps(event(vtn_comment="x" * (10 * 1024 * 1024))).encode()
    status, body, _ = await world.send("POST", "/events", data=huge)
    assert status == 413 and "limit" in body["detail"]
    status, _, _ = await world.send("POST", "/events", data=b"program=x",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415


async def test_a_target_list_of_100k_ids_is_accepted(world: World) -> None:
    ids = [world.ders["a1-boiler"]] * 100_000
    status, body, _ = await world.create(event_id="ev-big", targets={"device_ids": ids})
    assert status == 201, body
    assert body["summary"] == {"vens": 1, "ders": 1}
    unknown = [f"nope-{i:06d}" for i in range(100_000)]
    status, body, _ = await world.create(targets={"device_ids": unknown})
    assert status == 400 and body["errors"][0]["field"] == "targets.device_ids"
    assert "and 99990 more" in body["detail"]


async def test_aggregator_cannot_target_another_tenant_and_nothing_is_written(
    world: World
) -> None:
    for targets in ({"device_ids": [world.ders["b-boiler"]]},
                    {"ven_ids": ["ven-b"]},
                    {"ven_ids": ["ven-a1"], "device_ids": [world.ders["b-boiler"]]}):
        status, body, _ = await world.create("aggregator", targets=targets, **A1)
        assert status == 400, body
        assert body["errors"][0]["field"].startswith("targets")
        assert "unknown or not in your scope" in body["detail"]
    _, page, _ = await world.send("GET", "/events")
    assert page["items"] == []
    _, log, _ = await world.send("GET", "/log?kind=event.created")
    assert log["items"] == []
    status, body, _ = await world.create("aggregator", targets={"ven_ids": ["ven-a1"]}, **A1)
    assert status == 201 and body["aggregator_id"] == "A1"


async def test_prosumers_are_read_only(world: World) -> None:
    await world.create(event_id="ev-p")
    status, _, _ = await world.create("prosumer", **X1)
    assert status == 403
    status, _, _ = await world.send("PATCH", "/events/ev-p", {"priority": 2}, "prosumer",
                                    headers={"If-Match": '"0"'}, **X1)
    assert status == 403
    status, _, _ = await world.send("POST", "/events/ev-p/cancel", None, "prosumer", **X1)
    assert status == 403
    status, got, _ = await world.send("GET", "/events/ev-p", role="prosumer", **X1)
    assert status == 200 and got["modification_number"] == 0


async def test_tenants_see_and_change_only_their_events(world: World) -> None:
    status, _, _ = await world.create("aggregator", event_id="ev-a", **A1)
    assert status == 201
    # B sees nothing of A's event, and cannot touch it
    for role, claims in (("aggregator", A2), ("prosumer", X2)):
        status, _, _ = await world.send("GET", "/events/ev-a", role=role, **claims)
        assert status == 404
        _, page, _ = await world.send("GET", "/events", role=role, **claims)
        assert page["items"] == []
    status, _, _ = await world.send("PATCH", "/events/ev-a", {"priority": 1}, "aggregator",
                                    headers={"If-Match": '"0"'}, **A2)
    assert status == 404
    status, _, _ = await world.send("POST", "/events/ev-a/cancel", None, "aggregator", **A2)
    assert status == 404
    # a service event touching both: each aggregator sees it with its own deliveries only,
    # and may not change it
    await world.create(event_id="ev-s", targets={"ven_ids": ["ven-a1", "ven-b"]})
    _, b_view, _ = await world.send("GET", "/events/ev-s", role="aggregator", **A2)
    assert [d["ven_id"] for d in b_view["deliveries"]] == ["ven-b"]
    _, b_page, _ = await world.send("GET", "/events", role="aggregator", **A2)
    assert [e["event_id"] for e in b_page["items"]] == ["ev-s"]
    status, _, _ = await world.send("PATCH", "/events/ev-s", {"priority": 1}, "aggregator",
                                    headers={"If-Match": '"0"'}, **A2)
    assert status == 403
    status, _, _ = await world.send("POST", "/events/ev-s/cancel", None, "aggregator", **A1)
    assert status == 403
    _, a_page, _ = await world.send("GET", "/events", role="aggregator", **A1)
    assert [e["event_id"] for e in a_page["items"]] == ["ev-a", "ev-s"]
    status, _, _ = await world.send("GET", "/events?aggregator_id=A1", role="aggregator", **A1)
    assert status == 403
    _, by_tenant, _ = await world.send("GET", "/events?aggregator_id=A1")
    assert [e["event_id"] for e in by_tenant["items"]] == ["ev-a"]


async def test_patch_needs_if_match_and_bumps_the_modification_number(world: World) -> None:
    await world.create(event_id="ev-m")
    status, body, _ = await world.send("PATCH", "/events/ev-m", {"priority": 1})
    assert status == 428 and "If-Match" in body["detail"]
    status, body, headers = await world.send(
        "PATCH", "/events/ev-m", {"priority": 1, "vtn_comment": "moved"},
        headers={"If-Match": '"0"'})
    assert status == 200, body
    assert headers["ETag"] == '"1"' and body["modification_number"] == 1
    assert body["priority"] == 1 and body["vtn_comment"] == "moved"
    status, _, _ = await world.send("PATCH", "/events/ev-m", {"priority": 2},
                                    headers={"If-Match": '"0"'})
    assert status == 412
    new_signal = {"signal_name": "LOAD_DISPATCH", "signal_type": "delta", "units": "W",
                  "intervals": [{"duration_s": 3600, "value": -500}]}
    status, body, headers = await world.send("PATCH", "/events/ev-m", {"signals": [new_signal]},
                                             headers={"If-Match": "*"})
    assert status == 200 and headers["ETag"] == '"2"'
    assert body["duration_s"] == 3600 and body["signals"][0]["item_kind"] is None
    status, _, _ = await world.send("PATCH", "/events/nope", {"priority": 2},
                                    headers={"If-Match": '"0"'})
    assert status == 404
    _, log, _ = await world.send("GET", "/log?kind=event.modified")
    assert [e["data"]["modification_number"] for e in log["items"]] == [1, 2]


@pytest.mark.parametrize("body, field", [
    ({"modification_number": 5}, "modification_number"),
    ({"event_id": "other"}, "event_id"),
    ({"duration_s": 60}, "duration_s"),  # the current intervals last 1800 s
    ({"program": None}, "program"),
    ({"dtstart": "0001-01-01T00:00:00Z"}, "dtstart"),
    ({"targets": {"ven_ids": ["ven-b", "nope"]}}, "targets.ven_ids"),
    ({}, "body"),
    ({"colour": "red"}, "colour"),
])
async def test_bad_patches_name_the_field(world: World, body: dict[str, Any],
                                          field: str) -> None:
    await world.create(event_id="ev-bp")
    status, got, _ = await world.send("PATCH", "/events/ev-bp", body,
                                      headers={"If-Match": '"0"'})
    assert status == 400, got
    assert got["errors"][0]["field"] == field
    _, current, _ = await world.send("GET", "/events/ev-bp")
    assert current["modification_number"] == 0


async def test_cancel_is_idempotent_and_final(world: World) -> None:
    await world.create(event_id="ev-c")
    status, body, headers = await world.send("POST", "/events/ev-c/cancel")
    assert status == 200 and body["status_now"] == "cancelled"
    assert body["modification_number"] == 1 and headers["ETag"] == '"1"'
    status, again, _ = await world.send("POST", "/events/ev-c/cancel")
    assert status == 200 and again["modification_number"] == 1
    status, _, _ = await world.send("PATCH", "/events/ev-c", {"priority": 1},
                                    headers={"If-Match": '"1"'})
    assert status == 409
    status, _, _ = await world.send("POST", "/events/nope/cancel")
    assert status == 404
    _, log, _ = await world.send("GET", "/log?kind=event.cancelled")
    assert len(log["items"]) == 1


async def test_duplicate_event_id_is_409(world: World) -> None:
    assert (await world.create(event_id="ev-d"))[0] == 201
    status, body, _ = await world.create(event_id="ev-d")
    assert status == 409 and body["errors"][0]["field"] == "event_id"


async def test_list_filters_and_pages(world: World) -> None:
    now = datetime.now(UTC)
    await world.create(event_id="ev-1", program="peak", dtstart=soon(60))
    await world.create(event_id="ev-2", program="eco", dtstart=soon(120),
                       targets={"ven_ids": ["ven-b"]})
    await world.create(event_id="ev-3", program="peak", dtstart=soon(-5),  # active now
                       targets={"device_ids": [world.ders["a2-ev"]]})
    await world.send("POST", "/events/ev-1/cancel")

    async def ids(query: str) -> list[str]:
        status, page, _ = await world.send("GET", "/events" + query)
        assert status == 200, page
        return [e["event_id"] for e in page["items"]]

    assert await ids("") == ["ev-1", "ev-2", "ev-3"]
    assert await ids("?program=peak") == ["ev-1", "ev-3"]
    assert await ids("?status=active") == ["ev-3"]
    assert await ids("?status=far,cancelled") == ["ev-1", "ev-2"]
    assert await ids("?ven_id=ven-b") == ["ev-2"]
    assert await ids(f"?device_id={world.ders['a2-ev']}") == ["ev-3"]
    window = f"?from={(now + timedelta(minutes=30)).isoformat()}"
    window += f"&to={(now + timedelta(minutes=90)).isoformat()}"
    assert await ids(window.replace("+", "%2B")) == ["ev-1"]
    _, page, headers = await world.send("GET", "/events?limit=2")
    assert [e["event_id"] for e in page["items"]] == ["ev-1", "ev-2"]
    assert page["next_cursor"] == "ev-2" and 'rel="next"' in headers["Link"]
    assert {e["status_now"] for e in page["items"]} == {"cancelled", "far"}
    _, rest, _ = await world.send("GET", f"/events?limit=2&cursor={page['next_cursor']}")
    assert [e["event_id"] for e in rest["items"]] == ["ev-3"] and rest["next_cursor"] is None
    for query, field in (("?status=soon", "status"), ("?limit=0", "limit"),
                         ("?from=yesterday", "from"), ("?kind=der.changed", "kind"),
                         ("?to=0001-01-01T00:00:00%2B14:00", "to"),
                         ("?cursor=a/b", "cursor")):
        status, body, _ = await world.send("GET", "/events" + query)
        assert status == 400 and body["errors"][0]["field"] == field, (query, body)


async def test_opt_schedules_stay_in_scope(world: World) -> None:
    now = datetime.now(UTC)
    window = [OptWindow(start=now - timedelta(minutes=5), duration_s=3600)]
    await world.api.served.vtn.store.commit(Batch(opts=[
        OptSchedule(opt_id="o-a", ven_id="ven-a1", aggregator_id="A1", account_id="X1",
                    opt_type=OptType.OUT, opt_reason="vacation", windows=window),
        OptSchedule(opt_id="o-b", ven_id="ven-b", aggregator_id="A2", account_id="X2",
                    opt_type=OptType.OUT, opt_reason="vacation", windows=window),
    ]))
    at = now.isoformat().replace("+", "%2B")

    async def opts(query: str, role: str = "service", **claims: Any) -> tuple[int, Any]:
        status, body, _ = await world.send("GET", "/opts" + query, role=role, **claims)
        return status, body

    status, body = await opts(f"?at={at}")
    assert status == 200 and sorted(o["opt_id"] for o in body["items"]) == ["o-a", "o-b"]
    _, body = await opts(f"?at={at}", "aggregator", **A1)
    assert [o["opt_id"] for o in body["items"]] == ["o-a"]
    _, body = await opts(f"?at={at}&ven_id=ven-b", "aggregator", **A1)
    assert body["items"] == []
    _, body = await opts("?ven_id=ven-a1", "prosumer", **X1)
    assert [o["opt_id"] for o in body["items"]] == ["o-a"]
    assert (await opts("?ven_id=ven-b", "aggregator", **A1))[0] == 404
    assert (await opts("?ven_id=ven-b", "prosumer", **X1))[0] == 404
    _, body = await opts("?ven_id=ven-b&opt_type=optIn")
    assert body["items"] == []
    status, body = await opts("")
    assert status == 400 and body["errors"][0]["field"] == "ven_id"
    status, body = await opts("?at=0001-01-01T00:00:00%2B14:00")
    assert status == 400 and body["errors"][0]["field"] == "at"


async def test_the_old_log_url_now_serves_dr_events(world: World) -> None:
    await world.send("PATCH", f"/ders/{world.ders['a1-pv']}", {"device_name": "roof"})
    _, log, _ = await world.send("GET", "/log?kind=der.changed")
    assert len(log["items"]) == 1 and "last_seq" in log
    status, body, _ = await world.send("GET", "/events")
    assert status == 200 and body == {"items": [], "next_cursor": None}
    status, body, _ = await world.send("GET", "/log?after=" + "9" * 31)
    assert status == 400 and body["errors"][0]["field"] == "after"
    for last_id in ("9" * 31, "9" * 5000, "\u00b2"):
        status, body, _ = await world.send("GET", "/log/stream",
                                           headers={"Last-Event-ID": last_id})
        assert status == 400 and body["errors"][0]["field"] == "Last-Event-ID"


async def test_openapi_documents_the_event_routes(world: World) -> None:
    async with world.api.session.get(world.api.base + "/openapi.json") as r:
        doc = await r.json()
    paths = doc["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/events"])
    assert {"get", "patch"} <= set(paths["/api/v1/events/{event_id}"])
    assert "post" in paths["/api/v1/events/{event_id}/cancel"]
    assert "get" in paths["/api/v1/opts"] and "get" in paths["/api/v1/log/stream"]
    patch = paths["/api/v1/events/{event_id}"]["patch"]
    if_match = [p for p in patch["parameters"] if p["name"] == "If-Match"]
    assert if_match and if_match[0]["required"] is True
    assert {"412", "428"} <= set(patch["responses"])
    post = paths["/api/v1/events"]["post"]
    assert {"201", "400", "403", "409", "413"} <= set(post["responses"])
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    fields = set(doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"])
    assert {"program", "dtstart", "signals", "targets", "event_id"} <= fields
    assert not fields & {"modification_number", "created_by", "status"}
    params = {p["name"] for p in paths["/api/v1/events"]["get"]["parameters"]}
    assert params == {"status", "ven_id", "device_id", "from", "to", "aggregator_id",
                      "program", "limit", "cursor"}
