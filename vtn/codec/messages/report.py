"""EiReport: report descriptions, payloads, requests and the EiReport messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .base import EiResponse, ItemBase, SamplingRate


@dataclass(slots=True)
class ReportDescription:
    r_id: str
    report_type: str
    reading_type: str
    resource_id: str | None = None
    # reportDataSource/venID and groupID/partyID when present
    source_ven_id: str | None = None
    # reportSubject/endDeviceAsset/mrid values (device classes)
    subject_mrids: list[str] = field(default_factory=list)
    market_context: str | None = None
    item: ItemBase | None = None
    sampling_rate: SamplingRate | None = None
    # (lat, lon) from reportDataSource serviceArea / serviceLocation (gml pos / posList
    # centroid), when present
    location: tuple[float, float] | None = None


@dataclass(slots=True)
class LoadControlValue:
    current: float
    min: float | None = None
    max: float | None = None
    normal: float | None = None


@dataclass(slots=True)
class ResourceStatus:
    """oadrPayloadResourceStatus."""

    online: bool
    manual_override: bool
    # keys: "capacity", "levelOffset", "percentOffset", "setPoint"
    load_control: dict[str, LoadControlValue] = field(default_factory=dict)


@dataclass(slots=True)
class ReportPayload:
    """One oadrReportPayload: either a float value or a resource status."""

    r_id: str
    value: float | None = None
    status: ResourceStatus | None = None
    confidence: int | None = None
    accuracy: float | None = None
    data_quality: str | None = None


@dataclass(slots=True)
class ReportInterval:
    payloads: list[ReportPayload]
    dtstart: datetime | None = None
    duration: timedelta | None = None
    uid: str | None = None


@dataclass(slots=True)
class Report:
    """oadrReport, used for METADATA (descriptions) and data reports (intervals)."""

    report_specifier_id: str
    report_name: str
    created_date_time: datetime
    report_request_id: str = "0"
    report_id: str | None = None  # eiReportID
    dtstart: datetime | None = None
    duration: timedelta | None = None
    descriptions: list[ReportDescription] = field(default_factory=list)
    intervals: list[ReportInterval] = field(default_factory=list)


@dataclass(slots=True)
class SpecifierPayload:
    r_id: str
    reading_type: str = "x-notApplicable"
    item: ItemBase | None = None


@dataclass(slots=True)
class ReportRequest:
    """oadrReportRequest (what to report, how often, for how long)."""

    report_request_id: str
    report_specifier_id: str
    specifier_payloads: list[SpecifierPayload]
    granularity: timedelta = timedelta(0)
    report_back_duration: timedelta = timedelta(0)
    # reportInterval (xcal:properties) dtstart and duration, when given
    interval_start: datetime | None = None
    interval_duration: timedelta | None = None



# --- EiReport -------------------------------------------------------------------


@dataclass(slots=True)
class RegisterReport:
    request_id: str
    reports: list[Report] = field(default_factory=list)
    ven_id: str | None = None
    report_request_id: str | None = None


@dataclass(slots=True)
class RegisteredReport:
    response: EiResponse
    report_requests: list[ReportRequest] = field(default_factory=list)
    ven_id: str | None = None


@dataclass(slots=True)
class CreateReport:
    request_id: str
    report_requests: list[ReportRequest] = field(default_factory=list)
    ven_id: str | None = None


@dataclass(slots=True)
class CreatedReport:
    response: EiResponse
    pending_report_request_ids: list[str] = field(default_factory=list)
    ven_id: str | None = None


@dataclass(slots=True)
class UpdateReport:
    request_id: str
    reports: list[Report] = field(default_factory=list)
    ven_id: str | None = None


@dataclass(slots=True)
class CancelReport:
    request_id: str
    report_request_ids: list[str]
    report_to_follow: bool = False
    ven_id: str | None = None


@dataclass(slots=True)
class UpdatedReport:
    response: EiResponse
    cancel_report: CancelReport | None = None
    ven_id: str | None = None


@dataclass(slots=True)
class CanceledReport:
    response: EiResponse
    pending_report_request_ids: list[str] = field(default_factory=list)
    ven_id: str | None = None
