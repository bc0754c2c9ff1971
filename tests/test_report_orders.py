"""Reports on demand (issue #14): the API, the CLI and an event's raised telemetry rate."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import aiohttp
from click.testing import CliRunner

from registry.events import DrEvent, EventDelivery, EventSignal, EventTargets, SignalInterval
from registry.port import SERVICE, Scope
from tests.api_support import api_server
from tests.conftest import FakeClock
from tests.report_peers import PeerVen
from vtn.app import Vtn
from vtn.cli.root import main as cli
from vtn.config import Config
from vtn.services import event_telemetry, report_watch
from vtn.services.admin import provision_ven

RESOURCES: dict[str, str | None] = {"boiler": "Water_Heater", "hp": "Heat_Pump"}


async def _peer(vtn: Vtn, url: str, session: aiohttp.ClientSession, name: str, agg: str
                ) -> PeerVen:
    await provision_ven(vtn.ctx, name=name, aggregator_id=agg, account_id=f"acc-{agg}")
    peer = PeerVen(url, session, name, "one_shot")
    await peer.register(RESOURCES)
    await peer.poll()
    return peer


async def test_api_orders_lists_and_cancels_reports_in_scope(config: Config) -> None:
    async with api_server(config) as api:
        vtn = api.served.vtn
        own = await _peer(vtn, api.served.url, api.session, "own", "A1")
        other = await _peer(vtn, api.served.url, api.session, "other", "A2")
        ders = {d.resource_id: d.device_id for d in await vtn.store.ders_of_ven(own.ven_id)}
        agg = {"aggregator_id": "A1"}
        path = f"/vens/{own.ven_id}/report-requests"

        async def post(p: str, body: Any, role: str = "aggregator", **claims: Any
                       ) -> tuple[int, Any]:
            headers = api.headers(role, **(claims or agg))
            async with api.session.post(api.base + p, json=body, headers=headers) as r:
                return r.status, await r.json(content_type=None)

        body = {"device_ids": [ders["boiler"]], "kinds": ["usage", "status"],
                "granularity_s": 1, "duration_s": 600}
        status, got = await post(path, body)
        assert status == 202, got
        made = got["items"]
        assert len(made) == 2 and {r["state"] for r in made} == {"pending"}
        assert all(r["granularity_s"] == 10 for r in made)  # raised to the min period
        assert {tuple(r["r_ids"]) for r in made} == {("boiler-power",), ("boiler-status",)}
        # foreign VEN: 404; prosumer: read only; bad rID: 400 problem+json
        assert (await post(f"/vens/{other.ven_id}/report-requests", body))[0] == 404
        assert (await post(path, body, "prosumer", account_id="acc-A1"))[0] == 403
        status, problem = await post(path, {"r_ids": ["nope"], "granularity_s": 10})
        assert status == 400 and problem["errors"][0]["field"] == "r_ids"
        status, listed = await api.get(path, "prosumer", account_id="acc-A1")
        assert status == 200 and len(listed["items"]) == 4  # 2 at registration + 2 ordered
        foreign = f"/vens/{other.ven_id}/report-requests"
        assert (await api.get(foreign, "aggregator", **agg))[0] == 404
        # the watch job sends them; the VEN takes them on its next poll
        assert await report_watch.check(vtn.ctx) == 2
        assert await own.poll() == ["oadrCreateReport"] * 2
        ids = {r["report_request_id"] for r in made}
        assert ids <= set(own.periodic)
        period = own.periodic[next(iter(ids))]
        assert period.interval_duration == timedelta(seconds=600)
        status, per_der = await api.get(f"/ders/{ders['boiler']}/report-requests", "aggregator",
                                        **agg)
        assert status == 200 and ids <= {r["report_request_id"] for r in per_der["items"]}
        assert {r["state"] for r in per_der["items"]} == {"active"}
        # stop one
        rr = made[0]["report_request_id"]
        async with api.session.delete(api.base + f"{path}/{rr}",
                                      headers=api.headers("aggregator", **agg)) as r:
            assert r.status == 202
        await report_watch.check(vtn.ctx)
        assert await own.poll() == ["oadrCancelReport"]
        rec = await vtn.store.get_report_request(own.ven_id, rr)
        assert rec is not None and rec.state == "cancelled"
        async with api.session.delete(api.base + f"{path}/{rr}",
                                      headers=api.headers("aggregator", **agg)) as r:
            assert r.status == 409
        async with api.session.get(api.base + "/openapi.json") as r:
            spec = await r.json()
        assert "/api/v1/vens/{ven_id}/report-requests" in spec["paths"]


def test_cli_requests_lists_and_cancels(config: Config) -> None:
    import asyncio

    from tests.conftest import make_vtn
    from tests.oadr import call, metadata, register

    async def setup() -> str:
        vtn = make_vtn(config)
        await vtn.start()
        try:
            reg = await register(vtn, "cli-ven")
            await call(vtn, "EiReport", metadata(reg.ven_id or "", RESOURCES))
            return reg.ven_id or ""
        finally:
            await vtn.stop()

    ven_id = asyncio.run(setup())
    data = ["--data-dir", str(config.data_dir)]
    runner = CliRunner(env={"VTN_STORE_URL": config.store.url, "COLUMNS": "250"})
    got = runner.invoke(cli, ["reports", "request", ven_id, "--rid", "hp-power",
                              "--granularity", "30", "--json", *data])
    assert got.exit_code == 0, got.output
    rr = json.loads(got.output)[0]
    assert rr["attempts"] == 1 and rr["origin"] == "operator"
    listed = runner.invoke(cli, ["reports", "list", ven_id, "--json", *data])
    assert listed.exit_code == 0 and len(json.loads(listed.output)) == 3
    cancel = runner.invoke(cli, ["reports", "cancel", ven_id, rr["report_request_id"], *data])
    assert cancel.exit_code == 0, cancel.output
    listed = json.loads(runner.invoke(cli, ["reports", "list", ven_id, "--json", *data]).output)
    assert {r["report_request_id"]: r["state"] for r in listed}[rr["report_request_id"]] == (
        "cancel_pending")
    table = runner.invoke(cli, ["reports", "list", *data])
    assert table.exit_code == 0 and "cancel_pending" in table.output


class EventsOver:
    """The real store plus the two event-port reads the telemetry needs (until the
    event store lands in both adapters)."""

    def __init__(self, store: Any, events: list[DrEvent], deliveries: list[EventDelivery]):
        self._store, self.events, self.deliveries = store, events, deliveries

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def get_event(self, event_id: str, scope: Scope) -> DrEvent | None:
        return next((e for e in self.events if e.event_id == event_id), None)

    async def deliveries_of_event(self, event_id: str, scope: Scope) -> list[EventDelivery]:
        return [d for d in self.deliveries if d.event_id == event_id and (
            scope.is_service or d.aggregator_id == scope.aggregator_id)]


def event_for(device_ids: list[str], ven_id: str, clock: FakeClock, **kw: Any
              ) -> tuple[DrEvent, EventDelivery]:
    event = DrEvent(event_id="ev-1", program="p", dtstart=clock.now, duration_s=1800,
                    signals=[EventSignal(signal_name="SIMPLE", signal_type="level",
                                         intervals=[SignalInterval(duration_s=1800, value=1)])],
                    targets=EventTargets(device_ids=device_ids), **kw)
    return event, EventDelivery(event_id="ev-1", ven_id=ven_id, aggregator_id="A1",
                                device_ids=device_ids)


async def test_event_raises_then_restores_the_telemetry_rate(
    config: Config, clock: FakeClock
) -> None:
    from aiohttp import ClientSession

    from tests.conftest import make_vtn
    from vtn.transports.site import HttpSite

    vtn = make_vtn(config, clock)
    site = HttpSite(vtn, "127.0.0.1", config.http.port)
    await site.start()
    try:
        async with ClientSession() as session:
            url = f"http://127.0.0.1:{config.http.port}/OpenADR2/Simple/2.0b"
            ven = await _peer(vtn, url, session, "ev-ven", "A1")
            regular = set(ven.periodic)
            ders = {d.resource_id: d.device_id for d in await vtn.store.ders_of_ven(ven.ven_id)}
            event, delivery = event_for([ders["boiler"]], ven.ven_id, clock, telemetry_s=10)
            vtn.ctx.store = EventsOver(vtn.store, [event], [delivery])  # type: ignore[assignment]
            assert await event_telemetry.on_transitions(
                vtn.ctx, [("ev-1", "far", "active")]) == 2
            assert await ven.poll() == ["oadrCreateReport"]
            fast = set(ven.periodic) - regular
            assert len(fast) == 2
            recs = {r.report_request_id: r for r in await vtn.store.report_requests_of_ven(
                ven.ven_id)}
            assert {recs[i].granularity_s for i in fast} == {10}
            assert {recs[i].origin for i in fast} == {"event:ev-1"}
            assert {recs[i].state for i in fast} == {"active"}
            assert all(recs[i].r_ids in (["boiler-power"], ["boiler-status"]) for i in fast)
            # no telemetry_s: nothing
            assert await event_telemetry.raise_rate(vtn.ctx, "nope") == 0
            clock.advance(1800)
            await event_telemetry.on_transitions(vtn.ctx, [("ev-1", "active", "completed")])
            got = await ven.poll()
            assert got.count("oadrCancelReport") == 2 and got.count("oadrCreateReport") == 2
            recs = {r.report_request_id: r for r in await vtn.store.report_requests_of_ven(
                ven.ven_id)}
            assert {recs[i].state for i in fast} == {"cancelled"}
            renewed = [r for r in recs.values() if r.replaces in regular]
            assert len(renewed) == 2 and {r.state for r in renewed} == {"active"}
            assert all(r.report_request_id in ven.periodic for r in renewed)
    finally:
        await site.stop()
    assert SERVICE.is_service
