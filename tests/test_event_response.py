"""Measured response (issue #14): update reports through the real engine and store,
telemetry history, baseline/event/delivered per DER, VEN and in total, scoped.

Events come through the event port (tests.test_report_orders.EventsOver over the real
store) until the event store lands in both adapters.
"""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from registry.port import SERVICE, Scope
from registry.response import ResponseNotFound, measured_response
from tests.api_support import Api
from tests.conftest import FakeClock, make_vtn
from tests.oadr import call, metadata, register, update
from tests.test_report_orders import EventsOver, event_for
from vtn.app import make_store
from vtn.codec import messages as m
from vtn.config import Config
from vtn.services import history
from vtn.transports.site import HttpSite


async def _osb(vtn, name: str, agg: str, resources: dict[str, str | None]):  # type: ignore[no-untyped-def]
    reg = await register(vtn, name, aggregator_id=agg, account_id=f"acc-{agg}")
    ven_id = reg.ven_id or ""
    reply = await call(vtn, "EiReport", metadata(ven_id, resources))
    assert isinstance(reply, m.RegisteredReport)
    usage = next(r.report_request_id for r in reply.report_requests
                 if r.report_specifier_id == "usage-spec")
    ders = {d.resource_id: d.device_id for d in await vtn.store.ders_of_ven(ven_id)}
    return ven_id, usage, ders


async def test_measured_response_per_der_ven_and_total(config: Config, clock: FakeClock) -> None:
    store = EventsOver(make_store(config), [], [])
    vtn = make_vtn(config, clock, store=store)  # type: ignore[arg-type]
    site = HttpSite(vtn, "127.0.0.1", config.http.port)
    await site.start()
    try:
        v1, rr1, d1 = await _osb(vtn, "osb-1", "A1", {"boiler": "Water_Heater", "hp": "Heat_Pump"})
        v2, rr2, d2 = await _osb(vtn, "osb-2", "A2", {"ev": "EVSE"})
        start = clock.now  # 12:00; the event runs 13:00-13:30, baseline 12:00-13:00
        for minute in range(90):
            t = start + timedelta(minutes=minute)
            clock.now = t
            during = minute >= 60
            # kW on the wire (siScaleCode k): boiler 2.0 -> 0.5, hp 1.0 -> 1.2, ev 3.0
            await call(vtn, "EiReport", update(v1, rr1, "usage-spec", [
                m.ReportPayload(r_id="boiler-power", value=0.5 if during else 2.0),
                m.ReportPayload(r_id="hp-power", value=1.2 if during else 1.0),
            ], at=t))
            await call(vtn, "EiReport", update(v2, rr2, "usage-spec", [
                m.ReportPayload(r_id="ev-power", value=3.0)], at=t))
        assert await history.flush(vtn.ctx) == 3 * 18  # 3 rIDs x 18 five-minute buckets
        event, own = event_for([d1["boiler"], d1["hp"]], v1, FakeClock(start), telemetry_s=None)
        event = event.model_copy(update={"dtstart": start + timedelta(hours=1)})
        _, foreign = event_for([d2["ev"]], v2, FakeClock(start))
        foreign.aggregator_id = "A2"
        store.events.append(event)
        store.deliveries.extend([own, foreign])
        clock.now = start + timedelta(hours=2)  # completed
        got = await measured_response(store, "ev-1", SERVICE, clock.now)  # type: ignore[arg-type]
        ders = {d["device_id"]: d for d in got["ders"]}
        boiler, hp, ev = ders[d1["boiler"]], ders[d1["hp"]], ders[d2["ev"]]
        assert (boiler["baseline_w"], boiler["event_w"]) == pytest.approx((2000.0, 500.0))
        assert boiler["delivered_w"] == pytest.approx(1500.0)
        assert (boiler["samples"], boiler["baseline_samples"]) == (30, 60)
        assert boiler["baseline_source"] == "window"
        assert hp["delivered_w"] == pytest.approx(-200.0)  # it took more during the event
        assert ev["delivered_w"] == pytest.approx(0.0)
        vens = {v["ven_id"]: v for v in got["vens"]}
        assert vens[v1]["delivered_w"] == pytest.approx(1300.0)
        assert vens[v1]["ders"] == vens[v1]["ders_measured"] == 2
        assert got["total"]["delivered_w"] == pytest.approx(1300.0)
        assert got["total"]["baseline_w"] == pytest.approx(6000.0)
        assert got["status"] == "completed"
        # an aggregator sees its own DERs' figures only
        a1 = await measured_response(store, "ev-1", Scope("aggregator", "A1"), clock.now)  # type: ignore[arg-type]
        assert {d["device_id"] for d in a1["ders"]} == {d1["boiler"], d1["hp"]}
        assert a1["total"]["baseline_w"] == pytest.approx(3000.0)
        # no telemetry in the baseline window: the last bucket before dtstart
        late = event.model_copy(update={"event_id": "ev-2", "baseline_s": 600,
                                        "dtstart": start + timedelta(hours=2)})
        store.events.append(late)
        store.deliveries.append(own.model_copy(update={"event_id": "ev-2"}))
        clock.now = start + timedelta(hours=2, minutes=10)
        got = await measured_response(store, "ev-2", SERVICE, clock.now)  # type: ignore[arg-type]
        boiler = next(d for d in got["ders"] if d["device_id"] == d1["boiler"])
        assert boiler["baseline_source"] == "before"
        assert boiler["baseline_w"] == pytest.approx(500.0)
        assert boiler["event_w"] is None and boiler["delivered_w"] is None
        assert got["total"]["ders_measured"] == 0
        with pytest.raises(ResponseNotFound):
            await measured_response(store, "nope", SERVICE, clock.now)  # type: ignore[arg-type]
        # the API route, scoped
        async with aiohttp.ClientSession() as session:
            api = Api(None, config, session)  # type: ignore[arg-type]
            status, body = await api.get("/events/ev-1/response", "aggregator",
                                         aggregator_id="A2")
            assert status == 200 and [d["device_id"] for d in body["ders"]] == [d2["ev"]]
            assert body["total"]["delivered_w"] == pytest.approx(0.0)
            status, _ = await api.get("/events/nope/response")
            assert status == 404
    finally:
        await site.stop()


def test_response_command_is_a_standalone_click_command() -> None:
    from click.testing import CliRunner

    from vtn.cli.event_response import response_command

    out = CliRunner().invoke(response_command, ["--help"])
    assert out.exit_code == 0 and "EVENT_ID" in out.output
