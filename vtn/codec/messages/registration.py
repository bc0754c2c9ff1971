"""EiRegisterParty and the generic oadrResponse / oadrPoll."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from .base import EiResponse

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
