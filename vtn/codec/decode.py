"""OpenADR 2.0b XML -> wire dataclasses.

Mapping walks direct children and dispatches on precomputed Clark-notation tags (no
XPath), because decode sits on the hot path of every oadrPoll. Schema validation is a
separate, optional step on the already parsed tree.

Error contract: anything that prevents identifying the message is ``MalformedXml``; once
the message element is known, every content problem is ``SchemaInvalid`` carrying the
message name, so the service layer can answer with the right response type and 454."""

from __future__ import annotations

from collections.abc import Callable

from . import messages as m
from .decode_base import (
    _REG,
    _RESP,
    _RID,
    _VEN,
    T_EI_CREATED_EVENT,
    T_EI_REQUEST_EVENT,
    T_EI_RESPONSE,
    T_INFO,
    T_KEY,
    T_PAYLOAD,
    T_POLL_FREQ,
    T_PROFILE_NAME,
    T_PROFILES,
    T_REGISTRATION_ID,
    T_REQUEST_ID,
    T_SERVICE_INFO,
    T_SERVICE_NAME,
    T_SIGNATURE,
    T_SIGNED,
    T_TRANSPORT_NAME,
    T_TRANSPORTS,
    T_VALUE_O,
    T_VEN_ID,
    T_VTN_ID,
    _bool,
    _child,
    _dur_prop,
    _El,
    _local,
    _o,
    _simple,
    _text,
)
from .decode_event import (
    _cancel_opt,
    _canceled_opt,
    _create_opt,
    _created_event,
    _created_opt,
    _distribute_event,
    _request_event,
)
from .decode_report import (
    _cancel_report,
    _canceled_report,
    _create_report,
    _created_report,
    _register_report,
    _registered_report,
    _update_report,
    _updated_report,
)
from .errors import MalformedXml, SchemaInvalid
from .xmlsafe import (
    parse_xml,
    schema_errors,
)


def _profiles(el: _El) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for profile in el:
        name = ""
        transports: list[str] = []
        for c in profile:
            if c.tag == T_PROFILE_NAME:
                name = c.text or ""
            elif c.tag == T_TRANSPORTS:
                transports = [_child(t, T_TRANSPORT_NAME).text or "" for t in c]
        out.append((name, transports))
    return out


def _service_info(el: _El) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for service in el:
        info: dict[str, str] = {}
        name = ""
        for c in service:
            if c.tag == T_SERVICE_NAME:
                name = (c.text or "").strip()
            elif c.tag == T_INFO:
                info[_child(c, T_KEY).text or ""] = _child(c, T_VALUE_O).text or ""
        out[name] = info
    return out


# --- messages ------------------------------------------------------------------------


_poll = _simple(m.Poll, {T_VEN_ID: _VEN})
_query_registration = _simple(m.QueryRegistration, {T_REQUEST_ID: _RID})
_request_reregistration = _simple(m.RequestReregistration, {T_VEN_ID: _VEN})
_response = _simple(m.Response, {T_EI_RESPONSE: _RESP, T_VEN_ID: _VEN})
_create_party_registration = _simple(m.CreatePartyRegistration, {
    T_REQUEST_ID: _RID,
    T_REGISTRATION_ID: _REG,
    T_VEN_ID: _VEN,
    T_PROFILE_NAME: ("profile_name", _text, False),
    T_TRANSPORT_NAME: ("transport_name", _text, False),
    _o("oadrTransportAddress"): ("transport_address", _text, False),
    _o("oadrReportOnly"): ("report_only", _bool, False),
    _o("oadrXmlSignature"): ("xml_signature", _bool, False),
    _o("oadrVenName"): ("ven_name", _text, False),
    _o("oadrHttpPullModel"): ("http_pull_model", _bool, False),
}, http_pull_model=None)
_created_party_registration = _simple(m.CreatedPartyRegistration, {
    T_EI_RESPONSE: _RESP,
    T_REGISTRATION_ID: _REG,
    T_VEN_ID: _VEN,
    T_VTN_ID: ("vtn_id", _text, False),
    T_PROFILES: ("profiles", _profiles, False),
    T_POLL_FREQ: ("poll_freq", _dur_prop, False),
    T_SERVICE_INFO: ("service_specific_info", _service_info, False),
})
_cancel_party_registration = _simple(m.CancelPartyRegistration, {
    T_REQUEST_ID: _RID, T_REGISTRATION_ID: _REG, T_VEN_ID: _VEN,
})
_canceled_party_registration = _simple(m.CanceledPartyRegistration, {
    T_EI_RESPONSE: _RESP, T_REGISTRATION_ID: _REG, T_VEN_ID: _VEN,
})


_DECODERS: dict[str, Callable[[_El], m.Message]] = {
    _o(name): fn
    for name, fn in {
        "oadrQueryRegistration": _query_registration,
        "oadrCreatePartyRegistration": _create_party_registration,
        "oadrCreatedPartyRegistration": _created_party_registration,
        "oadrCancelPartyRegistration": _cancel_party_registration,
        "oadrCanceledPartyRegistration": _canceled_party_registration,
        "oadrRequestReregistration": _request_reregistration,
        "oadrResponse": _response,
        "oadrPoll": _poll,
        "oadrRegisterReport": _register_report,
        "oadrRegisteredReport": _registered_report,
        "oadrCreateReport": _create_report,
        "oadrCreatedReport": _created_report,
        "oadrUpdateReport": _update_report,
        "oadrUpdatedReport": _updated_report,
        "oadrCancelReport": _cancel_report,
        "oadrCanceledReport": _canceled_report,
        "oadrRequestEvent": _request_event,
        "oadrCreatedEvent": _created_event,
        "oadrDistributeEvent": _distribute_event,
        "oadrCreateOpt": _create_opt,
        "oadrCreatedOpt": _created_opt,
        "oadrCancelOpt": _cancel_opt,
        "oadrCanceledOpt": _canceled_opt,
    }.items()
}
assert {_local(t) for t in _DECODERS} == set(m.ELEMENT_NAMES.values())


# --- entry points ----------------------------------------------------------------------


def message_element(root: _El) -> _El:
    """Return the message element inside oadrPayload/oadrSignedObject, or raise."""
    if root.tag != T_PAYLOAD:
        raise MalformedXml(f"root element is {root.tag!r}, expected oadr:oadrPayload")
    for child in root:
        if child.tag == T_SIGNED:
            for msg in child:
                if msg.tag in _DECODERS:
                    return msg
                raise MalformedXml(f"unknown message element {msg.tag!r}")
            raise MalformedXml("oadrSignedObject is empty")
        if child.tag != T_SIGNATURE:
            break
    raise MalformedXml("no oadr:oadrSignedObject in oadrPayload")


def _first_text(el: _El, tag: str) -> str | None:
    for c in el.iter(tag):
        return c.text or ""
    return None


def _ids(msg: _El) -> tuple[str, str | None]:
    """Best-effort (request_id, ven_id) of a message, preferring its own elements over
    ones nested in reports/targets."""
    request_id: str | None = None
    ven_id: str | None = None
    scopes = [msg]
    scopes.extend(c for c in msg if c.tag in (T_EI_REQUEST_EVENT, T_EI_CREATED_EVENT))
    for scope in scopes:
        for c in scope:
            if c.tag == T_REQUEST_ID and request_id is None:
                request_id = c.text or ""
            elif c.tag == T_VEN_ID and ven_id is None:
                ven_id = c.text or ""
            elif c.tag == T_EI_RESPONSE and request_id is None:
                request_id = _first_text(c, T_REQUEST_ID)
    if request_id is None:
        request_id = _first_text(msg, T_REQUEST_ID)
    return request_id or "", ven_id


def schema_invalid(msg: _El, detail: str) -> SchemaInvalid:
    request_id, ven_id = _ids(msg)
    return SchemaInvalid(_local(msg.tag), detail, request_id=request_id, ven_id=ven_id)


def validate_tree(root: _El) -> _El:
    """Check structure and XSD; return the message element."""
    msg = message_element(root)
    error = schema_errors(root)
    if error is not None:
        raise schema_invalid(msg, error)
    return msg


def validate(data: bytes) -> None:
    """Raise ``MalformedXml`` or ``SchemaInvalid`` unless ``data`` is a valid message."""
    validate_tree(parse_xml(data))


def decode(data: bytes, *, validate: bool = True) -> m.Message:
    """Parse, optionally XSD-validate, and map an oadrPayload to its dataclass."""
    root = parse_xml(data)
    msg = validate_tree(root) if validate else message_element(root)
    try:
        return _DECODERS[msg.tag](msg)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise schema_invalid(msg, f"{type(exc).__name__}: {exc}") from None
