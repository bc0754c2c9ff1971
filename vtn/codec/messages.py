"""OpenADR 2.0b wire types.

One dataclass per message, used in both directions: the VTN decodes what VENs send
and encodes its replies; the VEN simulator does the opposite with the same types.
IDs are always ``str`` (never coerced to numbers), times are aware UTC ``datetime``,
durations are ``timedelta``. Optional fields are ``None`` when absent on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

# OpenADR response codes (eiResponse/responseCode).
OK = 200
OUT_OF_SEQUENCE = 450
NOT_ALLOWED = 451
INVALID_ID = 452
NOT_RECOGNIZED = 453
INVALID_DATA = 454
COMPLIANCE_ERROR = 459
SIGNAL_NOT_SUPPORTED = 460
REPORT_NOT_SUPPORTED = 461
TARGET_MISMATCH = 462
NOT_REGISTERED_OR_AUTHORIZED = 463
DEPLOYMENT_ERROR_OTHER = 469


@dataclass(slots=True)
class EiResponse:
    code: int = OK
    description: str = "OK"
    request_id: str = ""


# --- report building blocks -------------------------------------------------


@dataclass(slots=True)
class ItemBase:
    """An EMIX itemBase (powerReal, energyReal, voltage, temperature, customUnit...).

    ``kind`` is the element's local name; ``namespace`` says which schema it came from
    ("power", "emix" or "oadr"), so it can be written back exactly.
    """

    kind: str
    description: str
    units: str
    si_scale: str = "none"
    namespace: str = "power"
    # powerAttributes for power* kinds: hertz, voltage, ac
    hertz: float | None = None
    voltage: float | None = None
    ac: bool | None = None
    # oadr:pulseCount carries pulseFactor instead of siScaleCode
    pulse_factor: float | None = None


@dataclass(slots=True)
class SamplingRate:
    min_period: timedelta
    max_period: timedelta
    on_change: bool = False


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


# --- EiRegisterParty --------------------------------------------------------


@dataclass(slots=True)
class QueryRegistration:
    request_id: str


@dataclass(slots=True)
class CreatePartyRegistration:
    request_id: str
    profile_name: str = "2.0b"
    transport_name: str = "simpleHttp"
    transport_address: str | None = None
    report_only: bool = False
    xml_signature: bool = False
    ven_name: str | None = None
    http_pull_model: bool | None = True
    ven_id: str | None = None
    registration_id: str | None = None


@dataclass(slots=True)
class CreatedPartyRegistration:
    response: EiResponse
    vtn_id: str
    registration_id: str | None = None
    ven_id: str | None = None
    # (profile name, [transport names]) pairs, e.g. [("2.0b", ["simpleHttp"])]
    profiles: list[tuple[str, list[str]]] = field(
        default_factory=lambda: [("2.0b", ["simpleHttp"])]
    )
    poll_freq: timedelta | None = None
    # oadrServiceSpecificInfo: service name (EiEvent, EiReport...) -> {oadrKey: oadrValue}
    service_specific_info: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(slots=True)
class CancelPartyRegistration:
    request_id: str
    registration_id: str
    ven_id: str | None = None


@dataclass(slots=True)
class CanceledPartyRegistration:
    response: EiResponse
    registration_id: str | None = None
    ven_id: str | None = None


@dataclass(slots=True)
class RequestReregistration:
    ven_id: str


# --- generic ------------------------------------------------------------------


@dataclass(slots=True)
class Response:
    """oadrResponse."""

    response: EiResponse
    ven_id: str | None = None


@dataclass(slots=True)
class Poll:
    ven_id: str


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


# --- EiEvent ------------------------------------------------------------------


@dataclass(slots=True)
class RequestEvent:
    request_id: str
    ven_id: str
    reply_limit: int | None = None


@dataclass(slots=True)
class EventResponse:
    response: EiResponse
    event_id: str
    modification_number: int
    opt_type: str  # "optIn" | "optOut"


@dataclass(slots=True)
class CreatedEvent:
    response: EiResponse
    ven_id: str
    event_responses: list[EventResponse] = field(default_factory=list)


@dataclass(slots=True)
class DistributeEvent:
    """oadrDistributeEvent. Events themselves arrive with the events issue; the
    core VTN sends the (valid) empty form."""

    request_id: str
    vtn_id: str
    response: EiResponse | None = None


# --- EiOpt ----------------------------------------------------------------------


@dataclass(slots=True)
class CreateOpt:
    opt_id: str
    opt_type: str
    opt_reason: str
    request_id: str
    ven_id: str
    created_date_time: datetime
    event_id: str | None = None
    modification_number: int | None = None
    market_context: str | None = None
    resource_ids: list[str] = field(default_factory=list)
    # xcal:vavailability components as (dtstart, duration) pairs
    availability: list[tuple[datetime, timedelta]] = field(default_factory=list)


@dataclass(slots=True)
class CreatedOpt:
    response: EiResponse
    opt_id: str


@dataclass(slots=True)
class CancelOpt:
    request_id: str
    opt_id: str
    ven_id: str


@dataclass(slots=True)
class CanceledOpt:
    response: EiResponse
    opt_id: str


Message = (
    QueryRegistration
    | CreatePartyRegistration
    | CreatedPartyRegistration
    | CancelPartyRegistration
    | CanceledPartyRegistration
    | RequestReregistration
    | Response
    | Poll
    | RegisterReport
    | RegisteredReport
    | CreateReport
    | CreatedReport
    | UpdateReport
    | UpdatedReport
    | CancelReport
    | CanceledReport
    | RequestEvent
    | CreatedEvent
    | DistributeEvent
    | CreateOpt
    | CreatedOpt
    | CancelOpt
    | CanceledOpt
)

# Element name (local, in the oadr namespace) of each wire type.
ELEMENT_NAMES: dict[type, str] = {
    QueryRegistration: "oadrQueryRegistration",
    CreatePartyRegistration: "oadrCreatePartyRegistration",
    CreatedPartyRegistration: "oadrCreatedPartyRegistration",
    CancelPartyRegistration: "oadrCancelPartyRegistration",
    CanceledPartyRegistration: "oadrCanceledPartyRegistration",
    RequestReregistration: "oadrRequestReregistration",
    Response: "oadrResponse",
    Poll: "oadrPoll",
    RegisterReport: "oadrRegisterReport",
    RegisteredReport: "oadrRegisteredReport",
    CreateReport: "oadrCreateReport",
    CreatedReport: "oadrCreatedReport",
    UpdateReport: "oadrUpdateReport",
    UpdatedReport: "oadrUpdatedReport",
    CancelReport: "oadrCancelReport",
    CanceledReport: "oadrCanceledReport",
    RequestEvent: "oadrRequestEvent",
    CreatedEvent: "oadrCreatedEvent",
    DistributeEvent: "oadrDistributeEvent",
    CreateOpt: "oadrCreateOpt",
    CreatedOpt: "oadrCreatedOpt",
    CancelOpt: "oadrCancelOpt",
    CanceledOpt: "oadrCanceledOpt",
}
