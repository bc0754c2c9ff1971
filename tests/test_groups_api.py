"""/api/v1/groups over real HTTP: CRUD with ETags, explicit members, status roll-up,
forecast and the CIM view, the log entries of changes, and bad input as 4xx problems."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from registry.events import OptSchedule, OptType, OptWindow
from registry.models import DeviceClass, DeviceType, Liveness, Ven
from registry.port import Batch
from tests.api_support import Api, api_server, der, seed
from vtn.config import Config


@pytest.fixture
async def api(config: Config) -> AsyncIterator[Api]:
    async with api_server(config) as a:
        vens = [Ven(ven_id="va", ven_name="osb-a", aggregator_id="A1"),
                Ven(ven_id="vb", ven_name="osb-b", aggregator_id="A2")]
        ders = [der(f"a{i}", "va", aggregator_id="A1", device_id=f"a{i}",
                    device_class=DeviceClass.EV if i < 4 else DeviceClass.PV,
                    device_type=DeviceType.DEMAND if i < 4 else DeviceType.GENERATION,
                    liveness=Liveness.ONLINE if i != 1 else Liveness.OFFLINE,
                    max_capacity=1000.0, available_capacity=400.0) for i in range(6)]
        ders.append(der("b0", "vb", aggregator_id="A2", device_id="b0",
                        device_class=DeviceClass.EV))
        await seed(a, vens, ders)
        yield a


async def call(api: Api, method: str, path: str, body: Any = None, role: str = "aggregator",
               headers: dict[str, str] | None = None, **claims: Any) -> tuple[int, Any, Any]:
    if role == "aggregator" and not claims:
        claims = {"aggregator_id": "A1"}
    h = {**api.headers(role, **claims), **(headers or {})}
    async with api.session.request(method, api.base + path, json=body, headers=h) as r:
        text = await r.text()
        import json
        return r.status, (json.loads(text) if text else None), r.headers


async def test_group_lifecycle_with_etags_members_and_one_log_entry_each(api: Api) -> None:
    status, g, h = await call(api, "POST", "/groups", {
        "name": "evs", "description": "EV chargers",
        "filters": {"device_class": ["evCharger"]}, "exclude": ["a3"]})
    assert status == 201, g
    gid = g["group_id"]
    assert h["ETag"] == '"1"' and h["Location"].endswith(f"/groups/{gid}")
    assert (g["aggregator_id"], g["excludes"]) == ("A1", 1)
    status, page, _ = await call(api, "GET", f"/groups/{gid}/members")
    assert [m["device_id"] for m in page["items"]] == ["a0", "a1", "a2"]
    # by name too, and listed after the default group
    status, same, _ = await call(api, "GET", "/groups/evs")
    assert status == 200 and same["group_id"] == gid
    status, listed, _ = await call(api, "GET", "/groups")
    assert [x["name"] for x in listed["items"]] == ["all", "evs"]
    # explicit members: include a PV, drop the exclusion; version + 1
    status, changed, h = await call(api, "POST", f"/groups/{gid}/members",
                                    {"include": ["a4"], "remove": ["a3"]},
                                    headers={"If-Match": '"1"'})
    assert status == 200 and (changed["included"], changed["removed"]) == (1, 1), changed
    assert h["ETag"] == '"2"'
    status, page, _ = await call(api, "GET", f"/groups/{gid}/members?limit=2")
    assert [m["device_id"] for m in page["items"]] == ["a0", "a1"]
    status, rest, _ = await call(api, "GET",
                                 f"/groups/{gid}/members?limit=2&cursor={page['next_cursor']}")
    assert [m["device_id"] for m in rest["items"]] == ["a2", "a3"]
    status, last, _ = await call(api, "GET", f"/groups/{gid}/members?limit=2&cursor=a3")
    assert [m["device_id"] for m in last["items"]] == ["a4"] and last["next_cursor"] is None
    # a stale ETag changes nothing
    status, problem, _ = await call(api, "PATCH", f"/groups/{gid}", {"description": "x"},
                                    headers={"If-Match": '"1"'})
    assert status == 412, problem
    status, patched, h = await call(api, "PATCH", f"/groups/{gid}",
                                    {"name": "evs2", "filters": None},
                                    headers={"If-Match": '"2"'})
    assert status == 200 and h["ETag"] == '"3"' and patched["filters"] is None
    status, page, _ = await call(api, "GET", f"/groups/{gid}/members")
    assert [m["device_id"] for m in page["items"]] == ["a4"]  # static now
    status, _, _ = await call(api, "DELETE", f"/groups/{gid}", headers={"If-Match": '"3"'})
    assert status == 204
    status, _, _ = await call(api, "GET", f"/groups/{gid}")
    assert status == 404
    status, log = await api.get("/log?kind=group.created,group.members,group.changed,"
                                "group.deleted")
    kinds = [(e["kind"], e["data"].get("included")) for e in log["items"]]
    assert kinds == [("group.created", None), ("group.members", 1), ("group.changed", None),
                     ("group.deleted", None)]


async def test_status_forecast_and_cim_of_a_group(api: Api) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    opt = OptSchedule(opt_id="o1", ven_id="va", aggregator_id="A1", opt_type=OptType.OUT,
                      opt_reason="participating", device_ids=["a2"],
                      windows=[OptWindow(start=now + timedelta(hours=1), duration_s=3600)])
    await api.served.vtn.store.commit(Batch(opts=[opt]))
    status, g, _ = await call(api, "POST", "/groups", {"name": "mine", "filters": {}})
    gid = g["group_id"]
    status, s, _ = await call(api, "GET", f"/groups/{gid}/status")
    assert status == 200, s
    assert (s["members"], s["liveness"], s["dr_available"]) == (
        6, {"online": 5, "stale": 0, "offline": 1}, 6)
    assert s["total"]["max_capacity_w"] == 6000.0
    assert s["by_type"]["Generation"] == {"members": 2, "online": 2, "max_capacity_w": 2000.0,
                                          "available_capacity_w": 800.0}
    assert s["by_class"]["evCharger"]["members"] == 4
    start = quote(now.isoformat())
    status, f, _ = await call(api, "GET",
                              f"/groups/{gid}/forecast?horizon_h=3&slot_min=60&start={start}")
    assert status == 200, f
    # 5 online, 400 W each; a2 opted out during the second hour
    assert [x["available_w"] for x in f["slots"]] == [2000.0, 1600.0, 2000.0]
    assert f["slots"][1]["opted_out_w"] == 400.0
    status, c, _ = await call(api, "GET", f"/groups/{gid}/cim")
    group = c["EndDeviceGroup"]
    assert group["mRID"] == gid and group["Names"][0]["name"] == "mine"
    demand = next(p for p in group["DERMonitorableParameter"] if p["flowDirection"] == "forward")
    assert (demand["yUnit"], demand["yMultiplier"], demand["yUnitInstalledMax"]) == (
        "W", "k", 4.0)


async def test_scope_and_bad_input(api: Api) -> None:
    status, g, _ = await call(api, "POST", "/groups", {"name": "x", "include": ["b0"]})
    assert status == 400 and g["errors"][0]["field"] == "include", g  # A2's DER
    status, theirs, _ = await call(api, "POST", "/groups", {"name": "t", "filters": {}},
                                   aggregator_id="A2")
    tid = theirs["group_id"]
    for method, path in (("GET", f"/groups/{tid}"), ("GET", f"/groups/{tid}/members"),
                         ("GET", f"/groups/{tid}/status"), ("DELETE", f"/groups/{tid}"),
                         ("POST", f"/groups/{tid}/members")):
        status, problem, _ = await call(api, method, path, {"include": []})
        assert status == 404, (method, path, problem)
    status, _, _ = await call(api, "GET", "/groups", role="prosumer", account_id="X1")
    assert status == 403
    status, problem, _ = await call(api, "POST", "/groups", {"name": "all"})
    assert status == 400 and problem["errors"][0]["field"] == "name"
    status, problem, _ = await call(api, "POST", "/groups", {"name": "f",
                                                             "filters": {"nope": 1}})
    assert status == 400 and problem["errors"][0]["field"] == "nope", problem
    status, problem, _ = await call(api, "POST", "/groups", {"name": "t", "filters": {}},
                                    aggregator_id="A2")
    assert status == 409
    status, problem, _ = await call(api, "DELETE", "/groups/all")
    assert status == 409
    status, other, _ = await call(api, "POST", "/groups", {"name": "u", "filters": {}},
                                  aggregator_id="A2")
    status, problem, _ = await call(api, "PATCH", f"/groups/{other['group_id']}",
                                    {"name": "t"}, aggregator_id="A2")
    assert status == 409, problem  # the name is taken: not a stale version
    status, problem, _ = await call(api, "GET", "/groups/all/forecast?horizon_h=200")
    assert status == 400
    # a service sees both tenants' groups and creates its own
    status, mine, _ = await call(api, "POST", "/groups", {"name": "fleet", "filters": {}},
                                 role="service")
    assert status == 201 and mine["aggregator_id"] is None
    status, s, _ = await call(api, "GET", f"/groups/{mine['group_id']}/status", role="service")
    assert s["members"] == 7
    status, s, _ = await call(api, "GET", f"/groups/{mine['group_id']}/status")
    assert status == 404  # an aggregator never sees the service's group
