"""The API endpoints the dashboard reads (overview, map points, recent log, telemetry,
VEN actions) and the /ui routes, over real HTTP on loopback; each scoped by the token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp

from registry.models import Liveness, LogEntry, Ven
from registry.port import Batch, TelemetryBucket
from tests.api_support import Api, api_server, der, seed
from tests.oadr import call, register
from vtn.codec import messages as m
from vtn.config import Config

AGG = {"aggregator_id": "A1"}


async def _fleet(api: Api) -> tuple[Ven, Ven]:
    v1 = Ven(ven_name="osb-1", aggregator_id="A1", account_id="X1", registered=True,
             liveness=Liveness.ONLINE)
    v2 = Ven(ven_name="osb-2", aggregator_id="A2", account_id="X2")
    ders = [
        der("a", v1.ven_id, aggregator_id="A1", account_id="X1", lat=52.5, lon=13.4,
            max_capacity=3000.0, available_capacity=1000.0, liveness=Liveness.ONLINE),
        der("b", v1.ven_id, aggregator_id="A1", account_id="X1", max_capacity=500.0),
        der("c", v2.ven_id, aggregator_id="A2", account_id="X2", lat=48.1, lon=11.6,
            max_capacity=2000.0),
    ]
    now = datetime.now(UTC)
    log = [LogEntry(kind=k, at=now - timedelta(minutes=mins), actor="ven", ven_id=v.ven_id,
                    aggregator_id=v.aggregator_id, account_id=v.account_id)
           for k, v, mins in (("ven.registered", v1, 1), ("ven.registered", v2, 2),
                              ("ven.registered", v1, 120), ("ven.registration_refused", v2, 3))]
    await seed(api, [v1, v2], ders, log)
    return v1, v2


async def test_overview_counts_in_the_callers_scope(config: Config) -> None:
    async with api_server(config) as api:
        await _fleet(api)
        status, ov = await api.get("/overview")
        assert status == 200
        assert ov["ders"] == {"total": 3, "by_liveness": {"online": 1, "offline": 2}}
        assert ov["vens"]["total"] == 2
        assert ov["by_class"]["otherLoad"] == {"ders": 3, "max_w": 5500.0, "available_w": 1000.0}
        assert ov["recent"]["registrations"] == 2 and ov["recent"]["refusals"] == 1
        assert ov["last_seq"] >= 4
        status, mine = await api.get("/overview", "aggregator", **AGG)
        assert mine["ders"]["total"] == 2 and mine["vens"]["total"] == 1
        assert mine["recent"]["registrations"] == 1 and mine["recent"]["refusals"] == 0
        status, theirs = await api.get("/overview", "prosumer", account_id="X2")
        assert theirs["ders"]["total"] == 1 and theirs["recent"]["refusals"] == 1
        status, wide = await api.get("/overview?window_s=10800")
        assert wide["recent"]["registrations"] == 3
        for bad in ("window_s=5", "colour=red"):
            status, problem = await api.get(f"/overview?{bad}")
            assert status == 400, problem


async def test_map_points_are_located_ders_in_scope_and_filtered(config: Config) -> None:
    async with api_server(config) as api:
        await _fleet(api)
        status, body = await api.get("/map")
        assert status == 200 and body["fields"][:3] == ["device_id", "lat", "lon"]
        assert sorted(p[1] for p in body["points"]) == [48.1, 52.5]  # "b" has no location
        _, mine = await api.get("/map", "aggregator", **AGG)
        assert [p[1:4] for p in mine["points"]] == [[52.5, 13.4, "online"]]
        _, online = await api.get("/map?liveness=offline")
        assert [p[1] for p in online["points"]] == [48.1]
        status, _ = await api.get("/map?max_capacity[gte]=1")
        assert status == 400


async def test_recent_log_and_telemetry_are_scoped(config: Config) -> None:
    async with api_server(config) as api:
        v1, v2 = await _fleet(api)
        _, recent = await api.get("/log/recent?limit=2")
        kinds = [e["kind"] for e in recent["items"]]
        assert kinds == ["ven.registration_refused", "ven.registered"]
        assert recent["items"][0]["seq"] > recent["items"][1]["seq"]
        _, mine = await api.get("/log/recent", "aggregator", **AGG)
        assert {e["ven_id"] for e in mine["items"]} == {v1.ven_id}
        _, page = await api.get("/ders?fields=device_id,device_name")
        ids = {d["device_name"]: d["device_id"] for d in page["items"]}
        now = datetime.now(UTC).replace(microsecond=0)
        await api.served.vtn.store.commit(Batch(telemetry=[
            TelemetryBucket(ids["a"], "r1", now - timedelta(minutes=10), 3000.0, 2),
            TelemetryBucket(ids["a"], "r1", now - timedelta(minutes=5), 1000.0, 1),
        ]))
        status, tel = await api.get(f"/ders/{ids['a']}/telemetry?hours=1")
        assert status == 200 and [p["avg_w"] for p in tel["points"]] == [1500.0, 1000.0]
        status, _ = await api.get(f"/ders/{ids['a']}/telemetry", "aggregator", aggregator_id="A2")
        assert status == 404  # another tenant's DER is not revealed
        status, _ = await api.get(f"/ders/{ids['a']}/telemetry?hours=0")
        assert status == 400


async def test_ven_actions_queue_openadr_messages_within_scope(config: Config) -> None:
    async with api_server(config) as api:
        vtn = api.served.vtn
        await register(vtn, "osb-9", aggregator_id="A1", account_id="X1")
        ven = await vtn.store.find_ven_by_name("osb-9")
        assert ven is not None
        await vtn.store.commit(Batch(clear_outbox_of=[ven.ven_id]))
        path = f"{api.base}/vens/{ven.ven_id}"

        async def post(action: str, role: str = "service", **claims: str) -> int:
            async with api.session.post(f"{path}/{action}",
                                        headers=api.headers(role, **claims)) as r:
                return r.status

        assert await post("reregister", "prosumer", account_id="X1") == 403
        assert await post("reregister", "aggregator", aggregator_id="A2") == 404
        assert await post("reregister", "aggregator", **AGG) == 202
        _, vens = await api.get("/vens")
        assert [v["pending_outbox"] for v in vens["items"]] == [1]
        reply = await call(vtn, "OadrPoll", m.Poll(ven_id=ven.ven_id))
        assert isinstance(reply, m.RequestReregistration)
        assert await post("cancel-registration") == 202
        assert isinstance(await call(vtn, "OadrPoll", m.Poll(ven_id=ven.ven_id)),
                          m.CancelPartyRegistration)
        unregistered = Ven(ven_name="osb-10")
        await seed(api, [unregistered], [])
        async with api.session.post(f"{api.base}/vens/{unregistered.ven_id}/reregister",
                                    headers=api.headers()) as r:
            assert r.status == 409 and "not registered" in (await r.json())["detail"]


async def test_refused_registrations_are_counted(config: Config) -> None:
    async with api_server(config) as api:
        reply = await api.served.vtn.engine.handle("EiRegisterParty", _encode_register("ghost"))
        code = f"<ei:responseCode>{m.NOT_REGISTERED_OR_AUTHORIZED}<".encode()
        assert code in reply.body  # not provisioned
        _, ov = await api.get("/overview")
        assert ov["recent"]["refusals"] == 1
        _, recent = await api.get("/log/recent?kind=ven.registration_refused")
        assert recent["items"][0]["data"]["ven_name"] == "ghost"
        _, agg = await api.get("/overview", "aggregator", **AGG)
        assert agg["recent"]["refusals"] == 0  # tenant-less: service tokens only


async def test_a_flood_of_unknown_registrations_stores_a_bounded_number(
        config: Config) -> None:
    """Anyone can send registrations: each is refused, but only 120 a minute reach the
    durable log (no certificate needed to fill the disk otherwise)."""
    async with api_server(config) as api:
        code = f"<ei:responseCode>{m.NOT_REGISTERED_OR_AUTHORIZED}<".encode()
        for i in range(150):
            reply = await api.served.vtn.engine.handle("EiRegisterParty",
                                                       _encode_register(f"ghost-{i}"))
            assert code in reply.body
        _, ov = await api.get("/overview")
        assert ov["recent"]["refusals"] == 120


def _encode_register(name: str) -> bytes:
    from vtn.codec import encode

    return encode(m.CreatePartyRegistration(request_id="r1", ven_name=name))


async def test_ui_is_served_and_root_redirects(config: Config) -> None:
    config.api.ui_tile_url = "https://tiles.example/{z}/{x}/{y}.png"
    async with api_server(config) as api:
        base = f"http://127.0.0.1:{config.http.port}"
        async with api.session.get(base + "/", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/ui/"
        async with api.session.get(base + "/ui/") as r:
            assert r.status == 200 and "<title>VTN dashboard</title>" in await r.text()
            assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        async with api.session.get(base + "/ui/config.json") as r:
            assert (await r.json())["tile_url"] == config.api.ui_tile_url
        for asset in ("app.js", "vendor/leaflet-1.9.4/leaflet.js",
                      "vendor/supercluster-8.0.1/supercluster.min.js",
                      "vendor/uplot-1.6.31/uPlot.iife.min.js"):
            async with api.session.get(f"{base}/ui/static/{asset}") as r:
                assert r.status == 200, asset
        async with api.session.get(base + "/ui/static/../../__init__.py") as r:
            assert r.status in (403, 404)


async def test_ui_can_be_switched_off(config: Config) -> None:
    config.api.ui = False
    async with api_server(config) as api, aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{config.http.port}/ui/") as r:
            assert r.status == 404
        status, _ = await api.get("/overview")
        assert status == 200
