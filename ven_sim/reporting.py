"""An OSB's reports: its METADATA registration, adopting the VTN's report requests, and
the oadrUpdateReport telemetry of its DERs. Pure functions; no I/O, no OSB state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ven_sim.devices import Der
from ven_sim.events import OsbEvents
from ven_sim.session import STATUS_SPEC, USAGE_SPEC, Env, request_id
from vtn.codec import messages as m

USAGE_ITEM = m.ItemBase("powerReal", "RealPower", "W", "none", hertz=50.0, voltage=230.0,
                        ac=True)
MAX_INTERVALS = 12  # intervals in one oadrUpdateReport


class ActiveReport:
    """A report request the VTN made: which DERs (bitmask), how often, when next."""

    __slots__ = ("request_id", "status", "mask", "every", "spacing", "due")

    def __init__(self, request_id: str, status: bool, mask: int, every: float,
                 spacing: float, due: float) -> None:
        self.request_id = request_id
        self.status = status
        self.mask = mask
        self.every = every
        self.spacing = spacing
        self.due = due


def metadata(ders: Sequence[Der], location: tuple[float, float], ven_id: str | None,
             env: Env) -> m.RegisterReport:
    """METADATA_TELEMETRY_STATUS and _USAGE: one status and one usage rID per DER."""
    created = datetime.now(UTC)

    def desc(der: Der, status: bool) -> m.ReportDescription:
        return m.ReportDescription(
            r_id=der.status_rid if status else der.usage_rid,
            report_type="x-resourceStatus" if status else "usage",
            reading_type="x-notApplicable" if status else "Direct Read",
            resource_id=der.resource_id,
            subject_mrids=[der.kind.mrid],
            item=None if status else USAGE_ITEM,
            sampling_rate=env.sampling,
            location=location,
        )

    return m.RegisterReport(
        request_id=request_id(),
        ven_id=ven_id,
        reports=[
            m.Report(
                report_specifier_id=spec,
                report_name=name,
                created_date_time=created,
                descriptions=[desc(d, status) for d in ders],
            )
            for spec, name, status in (
                (STATUS_SPEC, "METADATA_TELEMETRY_STATUS", True),
                (USAGE_SPEC, "METADATA_TELEMETRY_USAGE", False),
            )
        ],
    )


def der_mask(ders: Sequence[Der], r_ids: list[str], status: bool) -> int:
    mask = 0
    for i, der in enumerate(ders):
        if (der.status_rid if status else der.usage_rid) in r_ids:
            mask |= 1 << i
    return mask


def adopt(reports: list[ActiveReport], ders: Sequence[Der], requests: list[m.ReportRequest],
          env: Env) -> list[ActiveReport]:
    """``reports`` with what the VTN asked for in ``requests`` started (the new list)."""
    now = env.now()
    # first report soon, spread so that a fleet does not report in lockstep; one
    # offset for all requests of a message so equal periods share oadrUpdateReports
    spread = env.rng.random() * 0.2
    for rr in requests:
        if rr.report_specifier_id not in (STATUS_SPEC, USAGE_SPEC):
            continue
        status = rr.report_specifier_id == STATUS_SPEC
        mask = der_mask(ders, [p.r_id for p in rr.specifier_payloads], status)
        if not mask:
            continue
        g = rr.granularity.total_seconds() or env.report_s or 60.0
        every = rr.report_back_duration.total_seconds() or g
        if env.report_s is not None:
            every = min(every, env.report_s)
        every = max(every, 0.1)
        spacing = min(g, every)
        reports = [r for r in reports if r.status != status]
        due = now + every * spread
        reports.append(ActiveReport(rr.report_request_id, status, mask, every, spacing, due))
    return reports


def update(ders: Sequence[Der], location: tuple[float, float], ven_id: str | None,
           due: list[ActiveReport], wall: float,
           events: OsbEvents | None = None) -> m.UpdateReport:
    """oadrUpdateReport with the intervals since the last one (at most MAX_INTERVALS);
    usage follows the opted-in ``events`` (None: no events, the plain DER models)."""
    lat_lon = location
    created = datetime.fromtimestamp(wall, UTC)
    reports = []
    for r in due:
        n = max(1, min(MAX_INTERVALS, round(r.every / r.spacing)))
        chosen = [d for i, d in enumerate(ders) if r.mask >> i & 1]
        intervals = []
        for k in range(n):
            t = wall - (n - 1 - k) * r.spacing
            if r.status:
                payloads = [m.ReportPayload(d.status_rid, status=d.status(t, lat_lon[1]))
                            for d in chosen]
            elif events is not None and (
                    shaped := events.powers(ders, lat_lon[1], t)) is not None:
                payloads = [m.ReportPayload(d.usage_rid, value=shaped[i])
                            for i, d in enumerate(ders) if r.mask >> i & 1]
            else:
                payloads = [m.ReportPayload(d.usage_rid, value=d.power(t, lat_lon[1]))
                            for d in chosen]
            intervals.append(m.ReportInterval(
                payloads, dtstart=datetime.fromtimestamp(t, UTC),
                duration=timedelta(seconds=r.spacing),
            ))
        reports.append(m.Report(
            report_specifier_id=STATUS_SPEC if r.status else USAGE_SPEC,
            report_name="TELEMETRY_STATUS" if r.status else "TELEMETRY_USAGE",
            created_date_time=created,
            report_request_id=r.request_id,
            dtstart=intervals[0].dtstart,
            duration=timedelta(seconds=r.spacing * n),
            intervals=intervals,
        ))
    return m.UpdateReport(request_id=request_id(), reports=reports, ven_id=ven_id)
