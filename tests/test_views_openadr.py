"""Discovery over OpenADR: an aggregator VEN finds and watches its DERs with EiReport.

Runs through the real engine (every reply, outbox messages included, XSD-checked) over
a real store; the clock is fake so schedules can be stepped.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from registry.models import VenRole
from tests.conftest import FakeClock, make_vtn
from tests.oadr import call, metadata, register, status_payload, update
from vtn.app import Vtn
from vtn.codec import messages as m
from vtn.config import Config
from vtn.services import views
from vtn.services.admin import delete_view, save_view


async def osb(vtn: Vtn, name: str, aggregator: str, resources: dict[str, str | None]
              ) -> tuple[str, str]:
    """Register an OSB with DERs; returns (venID, status reportRequestID)."""
    reg = await register(vtn, name, aggregator_id=aggregator, account_id=f"acc-{name}")
    ven_id = reg.ven_id or ""
    reply = await call(vtn, "EiReport", metadata(ven_id, resources))
    assert isinstance(reply, m.RegisteredReport) and reply.response.code == 200
    status = {r.report_specifier_id: r for r in reply.report_requests}["status-spec"]
    return ven_id, status.report_request_id


async def drain(vtn: Vtn, ven_id: str) -> list[m.Message]:
    """Poll until the outbox is empty; what the VEN received, in order."""
    out = []
    while True:
        msg = await call(vtn, "OadrPoll", m.Poll(ven_id=ven_id))
        if isinstance(msg, m.Response):
            return out
        out.append(msg)


async def aggregator(vtn: Vtn, name: str = "agg-1", aggregator_id: str = "A1") -> str:
    reg = await register(vtn, name, aggregator_id=aggregator_id, role=VenRole.AGGREGATOR)
    return reg.ven_id or ""


def request(rr_id: str, view: str, r_ids: list[str], granularity_s: float = 60,
            back_s: float = 60) -> m.ReportRequest:
    return m.ReportRequest(
        report_request_id=rr_id, report_specifier_id=view,
        specifier_payloads=[m.SpecifierPayload(r_id=r) for r in r_ids],
        granularity=timedelta(seconds=granularity_s),
        report_back_duration=timedelta(seconds=back_s),
    )


async def create(vtn: Vtn, ven_id: str, *requests: m.ReportRequest) -> m.CreatedReport:
    reply = await call(vtn, "EiReport", m.CreateReport("cr-1", list(requests), ven_id))
    assert isinstance(reply, m.CreatedReport)
    return reply


async def fleet(vtn: Vtn) -> dict[str, dict[str, str]]:
    """Two OSBs of aggregator A1, one of A2; device_id by resource per OSB name."""
    await osb(vtn, "osb-a", "A1", {"boiler-1": "Water_Heater", "hp-1": "Heat_Pump"})
    await osb(vtn, "osb-b", "A1", {"boiler-2": "Water_Heater"})
    await osb(vtn, "osb-c", "A2", {"boiler-3": "Water_Heater"})
    out: dict[str, dict[str, str]] = {}
    for name in ("osb-a", "osb-b", "osb-c"):
        ven = await vtn.store.find_ven_by_name(name)
        assert ven is not None
        out[name] = {d.resource_id: d.device_id for d in await vtn.store.ders_of_ven(ven.ven_id)}
    return out


def der_rids(report: m.Report) -> set[str]:
    return {d.r_id for d in report.descriptions if not d.r_id.startswith("agg.")}


async def test_aggregator_is_offered_exactly_its_ders_after_registration(vtn: Vtn) -> None:
    ders = await fleet(vtn)
    agg = await aggregator(vtn)
    [offer] = await drain(vtn, agg)
    assert isinstance(offer, m.RegisterReport)
    [report] = offer.reports
    assert (report.report_specifier_id, report.report_name) == (
        "all", "METADATA_TELEMETRY_STATUS")
    mine = {**ders["osb-a"], **ders["osb-b"]}
    assert der_rids(report) == set(mine.values())  # nothing of A2's boiler-3
    osb_a = await vtn.store.find_ven_by_name("osb-a")
    assert osb_a is not None
    boiler = next(d for d in report.descriptions if d.r_id == ders["osb-a"]["boiler-1"])
    assert (boiler.resource_id, boiler.source_ven_id) == ("boiler-1", osb_a.ven_id)
    assert boiler.subject_mrids == ["dhwDevice"]
    assert boiler.item is not None and boiler.item.kind == "powerReal"
    assert boiler.sampling_rate is not None
    assert boiler.sampling_rate.min_period == timedelta(seconds=10)
    aggregates = {d.r_id for d in report.descriptions} - der_rids(report)
    assert {"agg.online", "agg.max_capacity.dhwDevice", "agg.available_capacity"} <= aggregates
    # the VEN acknowledges the offer with oadrRegisteredReport
    ack = await call(vtn, "EiReport", m.RegisteredReport(m.EiResponse(200, "OK", offer.request_id),
                                                         ven_id=agg))
    assert isinstance(ack, m.Response) and ack.response.code == 200


async def test_status_reports_follow_the_osb_updates(vtn: Vtn, clock: FakeClock) -> None:
    ders = await fleet(vtn)
    a_ven = await vtn.store.find_ven_by_name("osb-a")
    assert a_ven is not None
    agg = await aggregator(vtn)
    await drain(vtn, agg)
    boiler1, hp1 = ders["osb-a"]["boiler-1"], ders["osb-a"]["hp-1"]
    created = await create(vtn, agg, request("rr-1", "all", [boiler1, hp1, "agg.online",
                                                                  "agg.max_capacity.dhwDevice"]))
    assert created.response.code == 200 and created.pending_report_request_ids == ["rr-1"]
    assert await views.tick(vtn.ctx) == 1
    [first] = await drain(vtn, agg)
    assert isinstance(first, m.UpdateReport)
    [report] = first.reports
    assert (report.report_request_id, report.report_specifier_id) == ("rr-1", "all")
    payloads = {p.r_id: p for p in report.intervals[0].payloads}
    assert set(payloads) == {boiler1, hp1, "agg.online", "agg.max_capacity.dhwDevice"}
    assert payloads[boiler1].status is not None and payloads[boiler1].status.online
    assert payloads["agg.online"].value == 3.0  # boiler-1, hp-1, boiler-2
    # the OSB reports its boiler offline with a capacity: the next report says so
    _, status_rr = await osb_status_request(vtn, "osb-a")
    await call(vtn, "EiReport", update(
        a_ven.ven_id, status_rr, "status-spec",
        [status_payload("boiler-1-status", online=False, cap_max=4.0)]))
    assert await views.tick(vtn.ctx) == 0  # not due yet
    clock.advance(60)
    assert await views.tick(vtn.ctx) == 1
    [second] = await drain(vtn, agg)
    assert isinstance(second, m.UpdateReport)
    payloads = {p.r_id: p for p in second.reports[0].intervals[0].payloads}
    assert payloads[boiler1].status is not None and not payloads[boiler1].status.online
    assert payloads["agg.online"].value == 2.0
    assert payloads["agg.max_capacity.dhwDevice"].value == 4000.0  # 4 kW, in W
    ack = await call(vtn, "EiReport", m.UpdatedReport(m.EiResponse(200, "OK", second.request_id),
                                                      ven_id=agg))
    assert isinstance(ack, m.Response) and ack.response.code == 200


async def osb_status_request(vtn: Vtn, name: str) -> tuple[str, str]:
    ven = await vtn.store.find_ven_by_name(name)
    assert ven is not None
    [rr] = [r for r in await vtn.store.report_requests_of_ven(ven.ven_id)
            if r.report_specifier_id == "status-spec" and r.state != "cancelled"]
    return ven.ven_id, rr.report_request_id


async def test_requests_beyond_the_offer_are_refused_and_nothing_is_kept(vtn: Vtn) -> None:
    ders = await fleet(vtn)
    agg = await aggregator(vtn)
    await drain(vtn, agg)
    foreign = ders["osb-c"]["boiler-3"]
    mine = ders["osb-b"]["boiler-2"]
    for bad, code in (
        (request("rr-x", "all", [mine, foreign]), 452),  # another aggregator's DER
        (request("rr-x", "no-such-view", [mine]), 452),
        (request("rr-x", "all", [mine], granularity_s=1), 454),  # below min sampling period
    ):
        reply = await create(vtn, agg, request("rr-ok", "all", [mine]), bad)
        assert reply.response.code == code, reply.response
    assert await vtn.store.subscriptions_of_ven(agg) == []  # all or nothing
    assert (await create(vtn, agg, request("rr-1", "all", [mine]))).response.code == 200
    dup = await create(vtn, agg, request("rr-1", "all", [mine]))
    assert dup.response.code == 452  # reportRequestIDs are unique


async def test_one_shot_report_is_delivered_once(vtn: Vtn, clock: FakeClock) -> None:
    ders = await fleet(vtn)
    agg = await aggregator(vtn)
    await drain(vtn, agg)
    await create(vtn, agg, request("once", "all", [ders["osb-a"]["hp-1"]], back_s=0))
    assert await views.tick(vtn.ctx) == 1
    clock.advance(3600)
    assert await views.tick(vtn.ctx) == 0
    assert [type(x) for x in await drain(vtn, agg)] == [m.UpdateReport]
    [sub] = await vtn.store.subscriptions_of_ven(agg)
    assert (sub.state, sub.deliveries) == ("done", 1)


async def test_cancel_report_stops_deliveries(vtn: Vtn, clock: FakeClock) -> None:
    ders = await fleet(vtn)
    agg = await aggregator(vtn)
    await drain(vtn, agg)
    await create(vtn, agg, request("rr-1", "all", [ders["osb-a"]["hp-1"]]),
                 request("rr-2", "all", ["agg.online"]))
    reply = await call(vtn, "EiReport", m.CancelReport("c-1", ["rr-1"], ven_id=agg))
    assert isinstance(reply, m.CanceledReport) and reply.response.code == 200
    assert reply.pending_report_request_ids == ["rr-2"]
    assert await views.tick(vtn.ctx) == 1
    [delivered] = await drain(vtn, agg)
    assert isinstance(delivered, m.UpdateReport)
    assert delivered.reports[0].report_request_id == "rr-2"
    again = await call(vtn, "EiReport", m.CancelReport("c-2", ["rr-1"], ven_id=agg))
    assert isinstance(again, m.CanceledReport) and again.response.code == 452


async def test_saved_view_and_membership_changes_are_announced(vtn: Vtn) -> None:
    ders = await fleet(vtn)
    agg = await aggregator(vtn)
    await drain(vtn, agg)
    gate = views.RefreshGate()
    assert await gate.run(vtn.ctx) == 0  # nothing changed since registration
    await save_view(vtn.ctx, "A1", "dhw", {"device_class": ["dhwDevice"]})
    assert await gate.run(vtn.ctx) == 1
    [offer] = await drain(vtn, agg)
    assert isinstance(offer, m.RegisterReport)
    by_view = {r.report_specifier_id: der_rids(r) for r in offer.reports}
    assert by_view["dhw"] == {ders["osb-a"]["boiler-1"], ders["osb-b"]["boiler-2"]}
    # a new DER of A1 appears in both views with a fresh announcement; A2's does not
    await osb(vtn, "osb-d", "A1", {"boiler-4": "Water_Heater"})
    await osb(vtn, "osb-e", "A2", {"boiler-5": "Water_Heater"})
    assert await gate.run(vtn.ctx) == 1
    [offer] = await drain(vtn, agg)
    assert isinstance(offer, m.RegisterReport)
    by_view = {r.report_specifier_id: der_rids(r) for r in offer.reports}
    assert len(by_view["dhw"]) == 3 and len(by_view["all"]) == 4
    assert await gate.run(vtn.ctx) == 0
    # deleting a view re-announces, and its reports end at their next due time
    await create(vtn, agg, request("rr-dhw", "dhw", ["agg.online"]))
    assert await delete_view(vtn.ctx, "A1", "dhw")
    assert await gate.run(vtn.ctx) == 1
    assert await views.tick(vtn.ctx) == 0
    [sub] = await vtn.store.subscriptions_of_ven(agg)
    assert sub.state == "cancelled"


async def test_osb_ven_is_offered_nothing(vtn: Vtn) -> None:
    ders = await fleet(vtn)
    osb_a = await vtn.store.find_ven_by_name("osb-a")
    assert osb_a is not None
    reply = await create(vtn, osb_a.ven_id, request("rr-1", "all", [ders["osb-a"]["hp-1"]]))
    assert reply.response.code == 452


async def test_schedules_survive_restart_and_two_processes_deliver_once(
    config: Config, clock: FakeClock
) -> None:
    first = make_vtn(config, clock)
    await first.start()
    ders = await fleet(first)
    agg = await aggregator(first)
    await drain(first, agg)
    await create(first, agg, request("rr-1", "all", [ders["osb-a"]["hp-1"]]))
    await first.stop()
    # a restarted process and a second one on the same store
    a, b = make_vtn(config, clock), make_vtn(config, clock)
    await a.start()
    await b.start()
    try:
        assert await views.tick(a.ctx) + await views.tick(b.ctx) == 1
        clock.advance(60)
        assert await views.tick(b.ctx) + await views.tick(a.ctx) == 1
        received = await drain(b, agg)
        assert [type(x) for x in received] == [m.UpdateReport, m.UpdateReport]
    finally:
        await a.stop()
        await b.stop()


async def test_reregistration_ends_old_reports_and_announces_again(vtn: Vtn) -> None:
    ders = await fleet(vtn)
    agg = await aggregator(vtn)
    await drain(vtn, agg)
    await create(vtn, agg, request("rr-1", "all", [ders["osb-a"]["hp-1"]]))
    reply = await call(vtn, "EiRegisterParty", m.CreatePartyRegistration(
        request_id="r2", ven_name="agg-1", ven_id=agg))
    assert isinstance(reply, m.CreatedPartyRegistration) and reply.response.code == 200
    assert [type(x) for x in await drain(vtn, agg)] == [m.RegisterReport]
    [sub] = await vtn.store.subscriptions_of_ven(agg)
    assert sub.state == "cancelled"


def test_views_cli_saves_validates_and_deletes(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from vtn.cli import main as cli

    run = CliRunner().invoke
    d = ["--data-dir", str(tmp_path)]
    ok = run(cli, ["views", "add", *d, "--aggregator", "A1", "--name", "dhw",
                   "--filter", "device_class=dhwDevice,hvacDevice"])
    assert ok.exit_code == 0, ok.output
    bad = run(cli, ["views", "add", *d, "--aggregator", "A1", "--name", "x",
                    "--filter", "colour=red"])
    assert bad.exit_code != 0 and "colour" in bad.output
    listed = run(cli, ["views", "list", *d, "--json"])
    assert [(v["name"], v["filters"]) for v in json.loads(listed.output)] == [
        ("dhw", {"device_class": ["dhwDevice", "hvacDevice"]})]
    assert run(cli, ["views", "delete", *d, "--aggregator", "A1", "--name", "dhw"]).exit_code == 0
    assert json.loads(run(cli, ["views", "list", *d, "--json"]).output) == []
    agg = run(cli, ["vens", "add", *d, "--name", "agg-x", "--role", "aggregator"])
    assert agg.exit_code != 0 and "aggregator_id" in agg.output
