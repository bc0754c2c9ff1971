"""EiReport, EiEvent and EiOpt through the real engine over a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from registry.port import SERVICE
from tests.oadr import NOW, call, metadata, register, status_payload, update
from vtn.app import Vtn
from vtn.codec import messages as m
from vtn.services.reports import request_cancel_report


async def registered_osb(vtn: Vtn, resources: dict[str, str | None] | None = None):  # type: ignore[no-untyped-def]
    reg = await register(vtn, "osb-1", account_id="acc-1", aggregator_id="agg-1")
    ven_id = reg.ven_id or ""
    reply = await call(
        vtn,
        "EiReport",
        metadata(ven_id, resources or {"boiler-000123": "Water_Heater", "pv-1": "PV"}),
    )
    assert isinstance(reply, m.RegisteredReport) and reply.response.code == 200
    requests = {r.report_specifier_id: r for r in reply.report_requests}
    return ven_id, requests


async def test_metadata_becomes_ders_and_report_requests(vtn: Vtn) -> None:
    ven_id, requests = await registered_osb(vtn)
    ders = {d.resource_id: d for d in await vtn.store.ders_of_ven(ven_id)}
    assert set(ders) == {"boiler-000123", "pv-1"}  # IDs kept exactly as sent
    boiler, pv = ders["boiler-000123"], ders["pv-1"]
    assert (boiler.device_class, boiler.device_type) == ("dhwDevice", "Demand")
    assert (pv.device_class, pv.device_type) == ("pvSystem", "Generation")
    assert boiler.location is not None and (boiler.location.lat, boiler.location.lon) == (
        52.5,
        13.4,
    )
    assert (boiler.account_id, boiler.aggregator_id) == ("acc-1", "agg-1")
    assert {t.r_id for t in boiler.telemetry} == {"boiler-000123-status", "boiler-000123-power"}
    assert boiler.liveness == "online"
    # one request for status, one for usage, each naming all rIDs, never below min period
    assert set(requests) == {"status-spec", "usage-spec"}
    usage = requests["usage-spec"]
    assert {p.r_id for p in usage.specifier_payloads} == {"boiler-000123-power", "pv-1-power"}
    assert usage.granularity >= timedelta(seconds=10)
    kinds = [e.kind for e in await vtn.store.read_log()]
    assert kinds.count("der.created") == 2 and "report.registered" in kinds


async def test_granularity_is_clamped_to_offered_sampling_rate(vtn: Vtn) -> None:
    vtn.config.reports.usage_granularity_s = 1  # below the 10 s min period offered
    _, requests = await registered_osb(vtn)
    assert requests["usage-spec"].granularity == timedelta(seconds=10)


async def test_status_update_sets_status_capacity_and_logs_changes_once(vtn: Vtn) -> None:
    ven_id, requests = await registered_osb(vtn)
    rr = requests["status-spec"].report_request_id
    msg = update(ven_id, rr, "status-spec", [status_payload("boiler-000123-status")])
    reply = await call(vtn, "EiReport", msg)
    assert isinstance(reply, m.UpdatedReport) and reply.response.code == 200
    assert reply.response.request_id == "upd-1" and reply.ven_id == ven_id
    await call(vtn, "EiReport", msg)  # same status again: no new change entry
    boiler = next(
        d for d in await vtn.store.ders_of_ven(ven_id) if d.resource_id.startswith("boiler")
    )
    assert boiler.status.online is True and boiler.status.manual_override is False
    assert boiler.status.load_control["capacity"].max == 3.0
    # capacity travels in the status rID's units: kW (siScaleCode k) -> W
    assert boiler.max_capacity == 3000.0 and boiler.available_capacity == 1500.0
    kinds = [e.kind for e in await vtn.store.read_log()]
    assert kinds.count("der.status_changed") == 1
    states = {r.report_request_id: r.state for r in await vtn.store.report_requests_of_ven(ven_id)}
    assert states[rr] == "active"


async def test_usage_values_are_kept_per_rid(vtn: Vtn) -> None:
    ven_id, requests = await registered_osb(vtn)
    rr = requests["usage-spec"].report_request_id
    later = NOW + timedelta(minutes=1)
    await call(
        vtn,
        "EiReport",
        update(ven_id, rr, "usage-spec", [m.ReportPayload(r_id="pv-1-power", value=4.2)], at=later),
    )
    pv = next(d for d in await vtn.store.ders_of_ven(ven_id) if d.resource_id == "pv-1")
    assert pv.last_values["pv-1-power"].value == 4.2
    assert pv.last_values["pv-1-power"].at == later
    assert pv.last_report_at == later


async def test_der_reporting_offline_is_offline_until_it_reports_online(vtn: Vtn) -> None:
    ven_id, requests = await registered_osb(vtn)
    rr = requests["status-spec"].report_request_id
    await call(
        vtn,
        "EiReport",
        update(ven_id, rr, "status-spec", [status_payload("pv-1-status", online=False)]),
    )
    pv = next(d for d in await vtn.store.ders_of_ven(ven_id) if d.resource_id == "pv-1")
    assert pv.liveness == "offline"
    await call(
        vtn,
        "EiReport",
        update(ven_id, rr, "status-spec", [status_payload("pv-1-status", online=True)]),
    )
    pv = next(d for d in await vtn.store.ders_of_ven(ven_id) if d.resource_id == "pv-1")
    assert pv.liveness == "online"


async def test_unknown_report_request_id_is_452(vtn: Vtn) -> None:
    ven_id, _ = await registered_osb(vtn)
    reply = await call(
        vtn,
        "EiReport",
        update(ven_id, "no-such-request", "status-spec", [status_payload("pv-1-status")]),
    )
    assert isinstance(reply, m.UpdatedReport) and reply.response.code == 452


async def test_unknown_rid_is_452_and_nothing_is_half_stored(vtn: Vtn) -> None:
    ven_id, requests = await registered_osb(vtn)
    rr = requests["status-spec"].report_request_id
    before = await vtn.store.ders_of_ven(ven_id)
    reply = await call(
        vtn,
        "EiReport",
        update(
            ven_id,
            rr,
            "status-spec",
            [status_payload("pv-1-status", online=False), status_payload("ghost-status")],
        ),
    )
    assert isinstance(reply, m.UpdatedReport) and reply.response.code == 452
    assert await vtn.store.ders_of_ven(ven_id) == before


async def test_update_report_from_unregistered_ven_is_463(vtn: Vtn) -> None:
    reply = await call(
        vtn, "EiReport", update("ghost-ven", "x", "status-spec", [status_payload("pv-1-status")])
    )
    assert isinstance(reply, m.UpdatedReport) and reply.response.code == 463


async def test_reregistering_metadata_updates_changes_and_removes_ders(vtn: Vtn) -> None:
    ven_id, _ = await registered_osb(vtn)
    ids = {d.resource_id: d.device_id for d in await vtn.store.ders_of_ven(ven_id)}
    # the boiler is now described as a heat pump; the PV is gone
    reply = await call(vtn, "EiReport", metadata(ven_id, {"boiler-000123": "Heat_Pump"}))
    assert isinstance(reply, m.RegisteredReport) and reply.response.code == 200
    ders = await vtn.store.ders_of_ven(ven_id)
    assert [(d.resource_id, d.device_id, d.device_class) for d in ders] == [
        ("boiler-000123", ids["boiler-000123"], "hvacDevice")
    ]
    log = [(e.kind, e.data.get("resource_id")) for e in await vtn.store.read_log()]
    assert ("der.changed", "boiler-000123") in log and ("der.removed", "pv-1") in log
    assert await vtn.store.count_ders(SERVICE) == 1


async def test_duplicate_rids_in_metadata_are_454(vtn: Vtn) -> None:
    reg = await register(vtn)
    msg = metadata(reg.ven_id or "", {"a": "PV"})
    msg.reports[1].descriptions.append(msg.reports[1].descriptions[0])
    reply = await call(vtn, "EiReport", msg)
    assert isinstance(reply, m.RegisteredReport) and reply.response.code == 454
    assert await vtn.store.ders_of_ven(reg.ven_id or "") == []


async def test_created_report_activates_requests(vtn: Vtn) -> None:
    ven_id, requests = await registered_osb(vtn)
    ids = [r.report_request_id for r in requests.values()]
    reply = await call(
        vtn,
        "EiReport",
        m.CreatedReport(
            response=m.EiResponse(200, "OK", "reg-rep-1"),
            pending_report_request_ids=ids,
            ven_id=ven_id,
        ),
    )
    assert isinstance(reply, m.Response) and reply.response.code == 200
    assert {r.state for r in await vtn.store.report_requests_of_ven(ven_id)} == {"active"}


async def test_vtn_cancels_a_report_on_poll(vtn: Vtn) -> None:
    ven_id, requests = await registered_osb(vtn)
    rr = requests["usage-spec"].report_request_id
    ven = await vtn.store.get_ven(ven_id)
    assert ven is not None
    await call(vtn, "OadrPoll", m.Poll(ven_id=ven_id))  # the VTN's own register report
    await request_cancel_report(vtn.ctx, ven, rr)
    msg = await call(vtn, "OadrPoll", m.Poll(ven_id=ven_id))
    assert isinstance(msg, m.CancelReport) and msg.report_request_ids == [rr]
    reply = await call(
        vtn,
        "EiReport",
        m.CanceledReport(response=m.EiResponse(200, "OK", msg.request_id), ven_id=ven_id),
    )
    assert isinstance(reply, m.Response) and reply.response.code == 200
    late = await call(
        vtn,
        "EiReport",
        update(ven_id, rr, "usage-spec", [m.ReportPayload(r_id="pv-1-power", value=1.0)]),
    )
    assert isinstance(late, m.UpdatedReport) and late.response.code == 452


async def test_ven_asking_for_vtn_reports_gets_452(vtn: Vtn) -> None:
    ven_id, _ = await registered_osb(vtn)
    reply = await call(
        vtn,
        "EiReport",
        m.CreateReport(
            request_id="cr-1",
            ven_id=ven_id,
            report_requests=[m.ReportRequest("rr-x", "vtn-spec", [m.SpecifierPayload("r1")])],
        ),
    )
    assert isinstance(reply, m.CreatedReport) and reply.response.code == 452
    assert reply.response.request_id == "cr-1"
    cancel = await call(vtn, "EiReport", m.CancelReport("cc-1", ["rr-x"], False, ven_id))
    assert isinstance(cancel, m.CanceledReport) and cancel.response.code == 452


async def test_request_event_gives_a_valid_empty_distribute(vtn: Vtn) -> None:
    ven_id, _ = await registered_osb(vtn)
    reply = await call(vtn, "EiEvent", m.RequestEvent(request_id="ev-1", ven_id=ven_id))
    assert isinstance(reply, m.DistributeEvent)
    assert reply.request_id == "ev-1" and reply.vtn_id == vtn.config.vtn_id
    assert reply.response is not None and reply.response.code == 200


async def test_created_event_for_unknown_event_is_452(vtn: Vtn) -> None:
    ven_id, _ = await registered_osb(vtn)
    reply = await call(
        vtn,
        "EiEvent",
        m.CreatedEvent(
            response=m.EiResponse(200, "OK", ""),
            ven_id=ven_id,
            event_responses=[m.EventResponse(m.EiResponse(200, "OK", "x"), "ev-9", 0, "optIn")],
        ),
    )
    assert isinstance(reply, m.Response) and reply.response.code == 452


async def test_opt_is_refused_in_the_right_response_type(vtn: Vtn) -> None:
    ven_id, _ = await registered_osb(vtn)
    created = await call(
        vtn,
        "EiOpt",
        m.CreateOpt(
            opt_id="opt-1",
            opt_type="optOut",
            opt_reason="participating",
            request_id="o-1",
            ven_id=ven_id,
            created_date_time=datetime.now(UTC),
            event_id="ev-1",
            modification_number=0,
        ),
    )
    assert isinstance(created, m.CreatedOpt)
    assert created.response.code == 452 and created.opt_id == "opt-1"
    canceled = await call(
        vtn, "EiOpt", m.CancelOpt(request_id="o-2", opt_id="opt-1", ven_id=ven_id)
    )
    assert isinstance(canceled, m.CanceledOpt) and canceled.response.code == 452
