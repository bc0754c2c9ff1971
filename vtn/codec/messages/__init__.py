"""OpenADR 2.0b wire types, one module per service (``base`` holds what they share).

One dataclass per message, used in both directions: the VTN decodes what VENs send
and encodes its replies; the VEN simulator does the opposite with the same types.
IDs are always ``str`` (never coerced to numbers), times are aware UTC ``datetime``,
durations are ``timedelta``. Optional fields are ``None`` when absent on the wire.
"""

from __future__ import annotations

from .base import (
    COMPLIANCE_ERROR,
    DEPLOYMENT_ERROR_OTHER,
    INVALID_DATA,
    INVALID_ID,
    NOT_ALLOWED,
    NOT_RECOGNIZED,
    NOT_REGISTERED_OR_AUTHORIZED,
    OK,
    OUT_OF_SEQUENCE,
    REPORT_NOT_SUPPORTED,
    SIGNAL_NOT_SUPPORTED,
    TARGET_MISMATCH,
    EiResponse,
    ItemBase,
    SamplingRate,
)
from .event import (
    CreatedEvent,
    DistributeEvent,
    Event,
    EventResponse,
    EventSignal,
    EventTarget,
    RequestEvent,
    SignalInterval,
)
from .opt import (
    CanceledOpt,
    CancelOpt,
    CreatedOpt,
    CreateOpt,
)
from .registration import (
    CanceledPartyRegistration,
    CancelPartyRegistration,
    CreatedPartyRegistration,
    CreatePartyRegistration,
    Poll,
    QueryRegistration,
    RequestReregistration,
    Response,
)
from .report import (
    CanceledReport,
    CancelReport,
    CreatedReport,
    CreateReport,
    LoadControlValue,
    RegisteredReport,
    RegisterReport,
    Report,
    ReportDescription,
    ReportInterval,
    ReportPayload,
    ReportRequest,
    ResourceStatus,
    SpecifierPayload,
    UpdatedReport,
    UpdateReport,
)

__all__ = [
    "COMPLIANCE_ERROR",
    "CancelOpt",
    "CancelPartyRegistration",
    "CancelReport",
    "CanceledOpt",
    "CanceledPartyRegistration",
    "CanceledReport",
    "CreateOpt",
    "CreatePartyRegistration",
    "CreateReport",
    "CreatedEvent",
    "CreatedOpt",
    "CreatedPartyRegistration",
    "CreatedReport",
    "DEPLOYMENT_ERROR_OTHER",
    "DistributeEvent",
    "ELEMENT_NAMES",
    "EiResponse",
    "Event",
    "EventResponse",
    "EventSignal",
    "EventTarget",
    "INVALID_DATA",
    "INVALID_ID",
    "ItemBase",
    "LoadControlValue",
    "Message",
    "NOT_ALLOWED",
    "NOT_RECOGNIZED",
    "NOT_REGISTERED_OR_AUTHORIZED",
    "OK",
    "OUT_OF_SEQUENCE",
    "Poll",
    "QueryRegistration",
    "REPORT_NOT_SUPPORTED",
    "RegisterReport",
    "RegisteredReport",
    "Report",
    "ReportDescription",
    "ReportInterval",
    "ReportPayload",
    "ReportRequest",
    "RequestEvent",
    "RequestReregistration",
    "ResourceStatus",
    "Response",
    "SIGNAL_NOT_SUPPORTED",
    "SamplingRate",
    "SignalInterval",
    "SpecifierPayload",
    "TARGET_MISMATCH",
    "UpdateReport",
    "UpdatedReport",
]

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
