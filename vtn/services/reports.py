"""EiReport: METADATA registration into DERs, report requests, status and telemetry updates."""

from __future__ import annotations

from datetime import datetime

from registry.models import (
    OPEN_REPORT_STATES,
    Der,
    DerStatus,
    LastValue,
    LogEntry,
    ReportRequestRecord,
    ReportRequestState,
    ReportSpec,
    RidInfo,
    Ven,
    new_id,
)
from registry.port import Batch, DerRef, DerStatusUpdate, PollState
from vtn.codec import messages as m
from vtn.config import ReportsConfig
from vtn.services import history, profile, report_watch, views
from vtn.services.base import (
    Context,
    OadrError,
    log,
    ok,
    registered_state,
    registered_ven,
)
from vtn.services.registration import outbox

# report kinds the VTN asks every OSB for, with the config key of their granularity
REQUESTED_REPORTS = {"TELEMETRY_STATUS": "status", "TELEMETRY_USAGE": "usage"}
OPEN_STATES = OPEN_REPORT_STATES


def base_name(report_name: str) -> str:
    return report_name.removeprefix("METADATA_")


def check_metadata(reports: list[m.Report]) -> None:
    """Conformance checks on an oadrRegisterReport (unique specifiers and rIDs)."""
    specifiers: set[str] = set()
    for report in reports:
        if report.report_specifier_id in specifiers:
            raise OadrError(
                m.INVALID_DATA, f"duplicate reportSpecifierID {report.report_specifier_id}"
            )
        specifiers.add(report.report_specifier_id)
        r_ids: set[str] = set()
        for d in report.descriptions:
            if d.r_id in r_ids:
                raise OadrError(m.INVALID_DATA, f"duplicate rID {d.r_id}")
            r_ids.add(d.r_id)
        if report.intervals:
            raise OadrError(m.INVALID_DATA, "METADATA reports carry no intervals")


def granularity_for(report: m.Report, wanted_s: float) -> float:
    """The wanted granularity, clamped to what the VEN offers (never below min period)."""
    mins = [
        d.sampling_rate.min_period.total_seconds() for d in report.descriptions if d.sampling_rate
    ]
    maxs = [
        d.sampling_rate.max_period.total_seconds() for d in report.descriptions if d.sampling_rate
    ]
    g = wanted_s
    if maxs:
        g = min(g, min(maxs))
    if mins:
        g = max(g, max(mins))
    return g


def plan_requests(
    ven: Ven, reports: list[m.Report], cfg: ReportsConfig, now: datetime | None = None
) -> list[ReportRequestRecord]:
    """The open-ended TELEMETRY_STATUS/USAGE requests sent inside oadrRegisteredReport
    (the first of their sends; report_watch resends, renews and watches them)."""
    out = []
    for report in reports:
        kind = REQUESTED_REPORTS.get(base_name(report.report_name))
        if kind is None or not report.descriptions:
            continue
        wanted = cfg.status_granularity_s if kind == "status" else cfg.usage_granularity_s
        g = granularity_for(report, wanted)
        out.append(
            ReportRequestRecord(
                ven_id=ven.ven_id,
                report_request_id=new_id(),
                report_specifier_id=report.report_specifier_id,
                r_ids=[d.r_id for d in report.descriptions],
                granularity_s=g,
                report_back_duration_s=max(g, cfg.report_back_duration_s),
                reading_types={d.r_id: d.reading_type for d in report.descriptions},
                renew=True,
            )
        )
    if now is not None:
        out = [report_watch.as_sent(r, now, cfg) for r in out]
    return out


wire_request = report_watch.wire_request


async def register_report(
    ctx: Context, msg: m.RegisterReport, fingerprint: str | None = None
) -> m.RegisteredReport:
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    check_metadata(msg.reports)
    now = ctx.clock()
    existing = {d.resource_id: d for d in await ctx.store.ders_of_ven(ven.ven_id)}
    resources = profile.describe_resources(msg.reports)
    batch = Batch(replace_report_specs_of=[ven.ven_id], cancel_report_requests_of=[ven.ven_id])
    for resource_id, res in resources.items():
        old = existing.get(resource_id)
        der = profile.der_from_resource(ven, res, old, now)
        if old is None:
            batch.log.append(_der_log("der.created", der, ven, now, device_class=der.device_class))
        elif changed := profile.der_changed(old, der):
            batch.log.append(_der_log("der.changed", der, ven, now, fields=changed))
        batch.ders.append(der)
    for resource_id, old in existing.items():
        if resource_id not in resources:
            batch.delete_ders.append(old.device_id)
            batch.log.append(_der_log("der.removed", old, ven, now))
    for report in msg.reports:
        batch.report_specs.append(
            ReportSpec(
                ven_id=ven.ven_id,
                report_specifier_id=report.report_specifier_id,
                report_name=report.report_name,
                r_ids={d.r_id: d.resource_id or "" for d in report.descriptions},
                r_info={
                    d.r_id: RidInfo(
                        resource_id=d.resource_id,
                        report_type=d.report_type,
                        units=d.item.units if d.item else None,
                        si_scale=d.item.si_scale if d.item else None,
                    )
                    for d in report.descriptions
                },
                registered_at=now,
            )
        )
    requests = plan_requests(ven, msg.reports, ctx.config.reports, now)
    batch.report_requests.extend(requests)
    batch.log.append(
        log(
            "report.registered",
            ven,
            now,
            actor="ven",
            reports=[r.report_specifier_id for r in msg.reports],
            resources=len(resources),
            requested=[r.report_request_id for r in requests],
        )
    )
    await ctx.store.commit(batch)
    return m.RegisteredReport(
        response=ok(msg.request_id),
        report_requests=[wire_request(r) for r in requests],
        ven_id=ven.ven_id,
    )


def _der_log(
    kind: str, der: Der | DerRef, ven: Ven | PollState, at: datetime, **data: object
) -> LogEntry:
    return LogEntry(
        kind=kind,
        at=at,
        actor="ven",
        ven_id=ven.ven_id,
        device_id=der.device_id,
        aggregator_id=der.aggregator_id,
        account_id=der.account_id,
        data={"resource_id": der.resource_id, **data},
    )


async def update_report(
    ctx: Context, msg: m.UpdateReport, fingerprint: str | None = None
) -> m.UpdatedReport:
    ven = await registered_state(ctx, msg.ven_id, fingerprint)
    if not msg.reports:  # nothing to store (some VENs send this first): not data
        return m.UpdatedReport(response=ok(msg.request_id), ven_id=ven.ven_id)
    now = ctx.clock()
    store = ctx.store
    rids: dict[str, RidInfo] = {}
    for spec in await store.report_specs_of_ven(ven.ven_id):
        rids.update(spec.r_info)
    ders = {d.resource_id: d for d in await store.der_refs_of_ven(ven.ven_id)}
    updates: dict[str, DerStatusUpdate] = {}
    samples: list[history.Sample] = []
    batch = Batch()
    cfg = ctx.config.reports
    silent_after = cfg.silent_after_periods
    for report in msg.reports:
        if report.report_specifier_id == "METADATA" or report.report_name.startswith("METADATA"):
            raise OadrError(m.INVALID_DATA, "oadrUpdateReport cannot carry METADATA")
        rr = await store.get_report_request(ven.ven_id, report.report_request_id)
        if rr is None or rr.state not in OPEN_STATES:
            raise OadrError(m.INVALID_ID, f"unknown reportRequestID {report.report_request_id}")
        has_data = False
        for interval in report.intervals:
            at = interval.dtstart or report.dtstart or now
            for p in interval.payloads:
                has_data = True
                info = rids.get(p.r_id)
                if info is None:
                    raise OadrError(m.INVALID_ID, f"unknown rID {p.r_id}")
                der = ders.get(info.resource_id or "")
                if der is not None:  # else VEN-level telemetry: accepted, not a DER
                    _apply_payload(updates, der.device_id, p, at, info)
                    if p.value is not None and info.report_type in history.LOAD_REPORT_TYPES:
                        samples.append(
                            (der.device_id, p.r_id, at, p.value, info.units, info.si_scale))
        if has_data and _refresh_due(rr, now, silent_after):
            batch.report_request_seen.append((ven.ven_id, rr.report_request_id, now, True,
                                              report_watch.next_check_after(rr, now, cfg)))
            if rr.state != ReportRequestState.ACTIVE:
                kind = ("report.resumed" if rr.state == ReportRequestState.SILENT
                        else "report.acknowledged")
                batch.log.append(_request_log(kind, rr, ders, now, via="oadrUpdateReport"))
    by_id = {d.device_id: d for d in ders.values()}
    for device_id, u in updates.items():
        if u.status is not None and (changed := _status_changes(by_id[device_id].status, u.status)):
            batch.log.append(_der_log("der.status_changed", by_id[device_id], ven, now, **changed))
    batch.der_status.extend(updates.values())
    if batch:
        await store.commit(batch)
    history.record(ctx, samples)
    return m.UpdatedReport(response=ok(msg.request_id), ven_id=ven.ven_id)


def _refresh_due(rr: ReportRequestRecord, now: datetime, silent_after: float) -> bool:
    """Whether this report must be written to the request: a state change, or its
    last_report_at is older than half the silence window (at most one write every
    1.5 report periods per request with the default 3-period window; the watch job
    reads it, nothing else)."""
    if rr.state != ReportRequestState.ACTIVE or rr.last_report_at is None:
        return True
    return (now - rr.last_report_at).total_seconds() >= rr.period_s * max(silent_after / 2, 1)


def _request_log(
    kind: str, rr: ReportRequestRecord, ders: dict[str, DerRef], at: datetime, **data: object
) -> LogEntry:
    tenant = next(iter(ders.values()), None)  # the VEN's tenant, as its DERs carry it
    return LogEntry(
        kind=kind, at=at, actor="ven", ven_id=rr.ven_id,
        aggregator_id=tenant.aggregator_id if tenant else None,
        account_id=tenant.account_id if tenant else None,
        data={"report_request_id": rr.report_request_id,
              "report_specifier_id": rr.report_specifier_id, **data},
    )


def _status_changes(old: DerStatus, new: DerStatus) -> dict[str, object]:
    """Changes worth a log line: online and manual override (not every capacity tick)."""
    changed: dict[str, object] = {
        k: getattr(new, k)
        for k in ("online", "manual_override")
        if getattr(new, k) != getattr(old, k)
    }
    return changed


def _apply_payload(
    updates: dict[str, DerStatusUpdate],
    device_id: str,
    p: m.ReportPayload,
    at: datetime,
    info: RidInfo,
) -> None:
    u = updates.get(device_id)
    if u is None:
        u = updates[device_id] = DerStatusUpdate(device_id=device_id, at=at)
    elif at < u.at:
        return  # an older interval than one already applied
    u.at = at
    if p.value is not None:
        u.values[p.r_id] = LastValue(
            value=p.value, at=at, report_type=info.report_type, units=info.units
        )
    if p.status is not None:
        u.status = profile.status_of(p.status, at)
        max_w, available_w = profile.capacities_of(p.status, info.units, info.si_scale)
        if max_w is not None:
            u.max_capacity = max_w
        if available_w is not None:
            u.available_capacity = available_w


async def created_report(
    ctx: Context, msg: m.CreatedReport, fingerprint: str | None = None
) -> m.Response:
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    now = ctx.clock()
    batch = Batch()
    listed = set(msg.pending_report_request_ids) if msg.response.code == m.OK else set()
    for rr in await ctx.store.report_requests_of_ven(ven.ven_id):
        if rr.report_request_id in listed and rr.state in (
            ReportRequestState.PENDING, ReportRequestState.OVERDUE
        ):
            batch.report_request_seen.append((
                ven.ven_id, rr.report_request_id, now, False,
                report_watch.next_check_after(rr, now, ctx.config.reports)))
            batch.log.append(log(
                "report.acknowledged", ven, now, actor="ven",
                report_request_id=rr.report_request_id,
                report_specifier_id=rr.report_specifier_id, via="oadrCreatedReport",
            ))
    if msg.response.code != m.OK:
        batch.log.append(
            log(
                "report.refused",
                ven,
                now,
                actor="ven",
                code=msg.response.code,
                description=msg.response.description,
            )
        )
    if batch:
        await ctx.store.commit(batch)
    return m.Response(ok(msg.response.request_id), ven_id=ven.ven_id)


async def canceled_report(
    ctx: Context, msg: m.CanceledReport, fingerprint: str | None = None
) -> m.Response:
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    now = ctx.clock()
    batch = Batch()
    for rr in await ctx.store.report_requests_of_ven(ven.ven_id):
        if rr.state == ReportRequestState.CANCEL_PENDING:
            batch.report_request_states.append(
                (ven.ven_id, rr.report_request_id, ReportRequestState.CANCELLED)
            )
            batch.log.append(
                log(
                    "report.cancelled",
                    ven,
                    now,
                    actor="ven",
                    report_request_id=rr.report_request_id,
                )
            )
    if batch:
        await ctx.store.commit(batch)
    return m.Response(ok(msg.response.request_id), ven_id=ven.ven_id)


async def cancel_report(
    ctx: Context, msg: m.CancelReport, fingerprint: str | None = None
) -> m.CanceledReport:
    """A VEN cancelling reports it asked the VTN for (aggregator views)."""
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    if not views.is_aggregator(ven):
        if msg.report_request_ids:
            raise OadrError(m.INVALID_ID, "no such report request at the VTN")
        return m.CanceledReport(response=ok(msg.request_id), ven_id=ven.ven_id)
    pending = await views.unsubscribe(ctx, ven, msg.report_request_ids)
    return m.CanceledReport(
        response=ok(msg.request_id), pending_report_request_ids=pending, ven_id=ven.ven_id
    )


async def create_report(
    ctx: Context, msg: m.CreateReport, fingerprint: str | None = None
) -> m.CreatedReport:
    """A VEN asking for VTN reports: an aggregator's views; an OSB is offered none."""
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    if not views.is_aggregator(ven):
        if msg.report_requests:
            raise OadrError(m.INVALID_ID, "rID not in the VTN's registered reports")
        return m.CreatedReport(response=ok(msg.request_id), ven_id=ven.ven_id)
    pending = await views.subscribe(ctx, ven, msg.report_requests)
    return m.CreatedReport(
        response=ok(msg.request_id), pending_report_request_ids=pending, ven_id=ven.ven_id
    )


async def registered_report(
    ctx: Context, msg: m.RegisteredReport, fingerprint: str | None = None
) -> m.Response:
    """The VEN's answer to the VTN's own oadrRegisterReport; may request reports at once."""
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    if msg.report_requests:
        if not views.is_aggregator(ven):
            raise OadrError(m.INVALID_ID, "rID not in the VTN's registered reports")
        await views.subscribe(ctx, ven, msg.report_requests)
    return m.Response(ok(msg.response.request_id), ven_id=ven.ven_id)


async def updated_report(
    ctx: Context, msg: m.UpdatedReport, fingerprint: str | None = None
) -> m.Response:
    """The VEN's acknowledgement of an oadrUpdateReport the VTN delivered."""
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    if msg.response.code != m.OK:
        await ctx.store.commit(Batch(log=[log(
            "report.delivery_refused", ven, ctx.clock(), actor="ven",
            code=msg.response.code, description=msg.response.description,
        )]))
    if msg.cancel_report is not None and msg.cancel_report.report_request_ids:
        await views.unsubscribe(ctx, ven, msg.cancel_report.report_request_ids)
    return m.Response(ok(msg.response.request_id), ven_id=ven.ven_id)


# --- operator action --------------------------------------------------------------


async def request_cancel_report(ctx: Context, ven: Ven, report_request_id: str) -> None:
    """Queue an oadrCancelReport for one of the VEN's reports (operators, the API via
    the watch job, the event telemetry)."""
    rr = await ctx.store.get_report_request(ven.ven_id, report_request_id)
    if rr is None or rr.state not in OPEN_STATES:
        raise OadrError(m.INVALID_ID, "unknown or closed report request")
    now = ctx.clock()
    new = rr.model_copy(update={
        "state": ReportRequestState.CANCEL_PENDING, "cancel_sent": True,
        "next_check_at": None, "rev": rr.rev + 1,
    })
    await ctx.store.commit(
        Batch(
            report_request_updates=[(new, rr.state, rr.rev)],
            outbox=[outbox(ven, report_watch.cancel_report(ven.ven_id, [report_request_id]))],
            log=[log("report.cancel_requested", ven, now, report_request_id=report_request_id)],
        )
    )
