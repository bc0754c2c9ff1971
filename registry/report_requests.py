"""Reports on demand (issue #14): what to ask a VEN for, as report-request records.

Shared by the HTTP API (which writes the records unsent: ``attempts == 0``,
``next_check_at = now``, and the watch job ``vtn.services.report_watch`` sends the
``oadrCreateReport`` within ``[reports] check_s``), the CLI and the event telemetry
(which send at once through ``vtn.services.report_orders``). No OpenADR here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import Field, model_validator

from registry.models import Der, Model, ReportRequestRecord, ReportRequestState, new_id

KINDS = {"usage": "METADATA_TELEMETRY_USAGE", "status": "METADATA_TELEMETRY_STATUS"}


class OrderError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ReportOrder(Model):
    """A report wanted from one VEN: its rIDs, or DERs (mapped to their rIDs)."""

    r_ids: list[str] = Field(default_factory=list, max_length=10000)
    device_ids: list[str] = Field(default_factory=list, max_length=10000)
    kinds: list[str] = Field(default_factory=lambda: ["usage"],
                             description="for device_ids: usage and/or status rIDs")
    granularity_s: float = Field(gt=0, le=86400)
    report_back_duration_s: float | None = Field(None, gt=0, le=86400)
    # reportInterval duration; None: open-ended (renewed before its horizon ends)
    duration_s: float | None = Field(None, gt=0, le=30 * 86400)

    @model_validator(mode="after")
    def _something(self) -> ReportOrder:
        if not self.r_ids and not self.device_ids:
            raise ValueError("name r_ids or device_ids")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise ValueError(f"kinds are usage or status, not {bad[0]!r}")
        return self


def plan_order(
    order: ReportOrder, ven_id: str, ders: Iterable[Der], now: datetime, origin: str,
) -> list[ReportRequestRecord]:
    """One unsent record per report specifier the wanted rIDs belong to.

    rIDs must be ones the VEN's DERs registered (452-like: OrderError), device_ids must
    be DERs of this VEN; the granularity is raised to the rIDs' largest minimum period.
    """
    by_rid = {t.r_id: t for d in ders for t in d.telemetry}
    by_device = {d.device_id: d for d in ders}
    wanted: list[str] = []
    for device_id in order.device_ids:
        der = by_device.get(device_id)
        if der is None:
            raise OrderError("device_ids", f"{device_id} is not a DER of VEN {ven_id}")
        names = {KINDS[k] for k in order.kinds}
        wanted.extend(t.r_id for t in der.telemetry if t.report_name in names)
    for r_id in order.r_ids:
        if r_id not in by_rid:
            raise OrderError("r_ids", f"{r_id} is not an rID the VEN registered for a DER")
        wanted.append(r_id)
    if not wanted:
        raise OrderError("kinds", "those DERs registered no rIDs of these kinds")
    by_spec: dict[str, list[str]] = {}
    for r_id in dict.fromkeys(wanted):
        by_spec.setdefault(by_rid[r_id].report_specifier_id, []).append(r_id)
    out = []
    for spec, r_ids in by_spec.items():
        mins = [by_rid[r].min_period_s for r in r_ids if by_rid[r].min_period_s]
        g = max([order.granularity_s, *mins])
        out.append(ReportRequestRecord(
            ven_id=ven_id, report_request_id=new_id(), report_specifier_id=spec,
            r_ids=r_ids, granularity_s=g,
            report_back_duration_s=max(g, order.report_back_duration_s or g),
            interval_duration_s=order.duration_s, renew=order.duration_s is None,
            origin=origin, created_at=now, next_check_at=now,
            reading_types={r: by_rid[r].reading_type for r in r_ids},
        ))
    return out


def cancel_record(rec: ReportRequestRecord, now: datetime) -> ReportRequestRecord:
    """``rec`` marked for cancelling; the watch job queues the oadrCancelReport."""
    return rec.model_copy(update={
        "state": ReportRequestState.CANCEL_PENDING, "cancel_sent": False,
        "next_check_at": now, "rev": rec.rev + 1,
    })


def covering(recs: Iterable[ReportRequestRecord], der: Der) -> list[ReportRequestRecord]:
    """The requests that name one of this DER's rIDs (its telemetry state)."""
    mine = {t.r_id for t in der.telemetry}
    return [r for r in recs if mine.intersection(r.r_ids)]
