"""Test helpers: speak OpenADR to the engine (no socket) and build typical OSB messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vtn.app import Vtn
from vtn.codec import decode, encode
from vtn.codec import messages as m
from vtn.services.admin import provision_ven


async def call(vtn: Vtn, service: str, msg: m.Message) -> m.Message:
    """Send a message through the real engine; the reply is XSD-checked by the fixture."""
    reply = await vtn.engine.handle(service, encode(msg))
    assert reply.status == 200, reply.body
    return decode(reply.body)


async def register(
    vtn: Vtn, name: str = "osb-1", **provision: str | None
) -> m.CreatedPartyRegistration:
    await provision_ven(vtn.ctx, name=name, **provision)  # type: ignore[arg-type]
    reply = await call(
        vtn, "EiRegisterParty", m.CreatePartyRegistration(request_id="r1", ven_name=name)
    )
    assert isinstance(reply, m.CreatedPartyRegistration)
    assert reply.response.code == 200, reply.response
    return reply


def description(
    r_id: str,
    resource: str,
    mrid: str | None,
    report_type: str = "usage",
    reading_type: str = "Direct Read",
    location: tuple[float, float] | None = None,
    item: bool = True,
) -> m.ReportDescription:
    return m.ReportDescription(
        r_id=r_id,
        report_type=report_type,
        reading_type=reading_type,
        resource_id=resource,
        subject_mrids=[mrid] if mrid else [],
        item=m.ItemBase("powerReal", "RealPower", "W", "k") if item else None,
        sampling_rate=m.SamplingRate(timedelta(seconds=10), timedelta(minutes=5)),
        location=location,
    )


NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def metadata(ven_id: str, resources: dict[str, str | None]) -> m.RegisterReport:
    """An OSB's METADATA: one status rID and one usage rID per resource."""
    return m.RegisterReport(
        request_id="reg-rep-1",
        ven_id=ven_id,
        reports=[
            m.Report(
                report_specifier_id="status-spec",
                report_name="METADATA_TELEMETRY_STATUS",
                created_date_time=NOW,
                descriptions=[
                    description(
                        f"{res}-status",
                        res,
                        mrid,
                        "x-resourceStatus",
                        "x-notApplicable",
                        location=(52.5, 13.4),
                    )
                    for res, mrid in resources.items()
                ],
            ),
            m.Report(
                report_specifier_id="usage-spec",
                report_name="METADATA_TELEMETRY_USAGE",
                created_date_time=NOW,
                descriptions=[
                    description(f"{res}-power", res, mrid) for res, mrid in resources.items()
                ],
            ),
        ],
    )


def status_payload(
    r_id: str, online: bool = True, cap_max: float = 3.0, cap_now: float = 1.5
) -> m.ReportPayload:
    return m.ReportPayload(
        r_id=r_id,
        status=m.ResourceStatus(
            online=online,
            manual_override=False,
            load_control={"capacity": m.LoadControlValue(current=cap_now, max=cap_max)},
        ),
    )


def update(
    ven_id: str, rr_id: str, spec: str, payloads: list[m.ReportPayload], at: datetime = NOW
) -> m.UpdateReport:
    return m.UpdateReport(
        request_id="upd-1",
        ven_id=ven_id,
        reports=[
            m.Report(
                report_specifier_id=spec,
                report_name="TELEMETRY_STATUS" if spec == "status-spec" else "TELEMETRY_USAGE",
                created_date_time=at,
                report_request_id=rr_id,
                dtstart=at,
                intervals=[m.ReportInterval(payloads=payloads, dtstart=at)],
            )
        ],
    )
