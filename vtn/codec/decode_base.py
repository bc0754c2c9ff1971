"""Shared pieces of the decoders: Clark-notation tags, scalar converters, the generic
child collector and the building blocks several services use.

Mapping walks direct children and dispatches on precomputed tags (no XPath), because
decoding sits on the hot path of every oadrPoll."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from lxml import etree

from . import messages as m
from .xmlsafe import (
    ITEM_NAMESPACES,
    NS_DS,
    NS_EI,
    NS_EMIX,
    NS_GML,
    NS_OADR,
    NS_POWER,
    NS_PYLD,
    NS_STRM,
    NS_XCAL,
)

_El = etree._Element


def _o(n: str) -> str:
    return f"{{{NS_OADR}}}{n}"


def _e(n: str) -> str:
    return f"{{{NS_EI}}}{n}"


def _x(n: str) -> str:
    return f"{{{NS_XCAL}}}{n}"


T_PAYLOAD = _o("oadrPayload")
T_SIGNED = _o("oadrSignedObject")
T_SIGNATURE = f"{{{NS_DS}}}Signature"

T_REQUEST_ID = f"{{{NS_PYLD}}}requestID"
T_REPLY_LIMIT = f"{{{NS_PYLD}}}replyLimit"
T_REPORT_TO_FOLLOW = f"{{{NS_PYLD}}}reportToFollow"
T_EI_REQUEST_EVENT = f"{{{NS_PYLD}}}eiRequestEvent"
T_EI_CREATED_EVENT = f"{{{NS_PYLD}}}eiCreatedEvent"
T_MARKET_CONTEXT = f"{{{NS_EMIX}}}marketContext"
T_END_DEVICE_ASSET = f"{{{NS_POWER}}}endDeviceAsset"
T_MRID = f"{{{NS_POWER}}}mrid"
T_INTERVALS = f"{{{NS_STRM}}}intervals"
T_SERVICE_AREA = f"{{{NS_EMIX}}}serviceArea"
T_SERVICE_LOCATION = f"{{{NS_POWER}}}serviceLocation"
T_POS_LIST = f"{{{NS_GML}}}posList"
T_POS = f"{{{NS_GML}}}pos"

T_VEN_ID = _e("venID")
T_VTN_ID = _e("vtnID")
T_REGISTRATION_ID = _e("registrationID")
T_EI_RESPONSE = _e("eiResponse")
T_RESPONSE_CODE = _e("responseCode")
T_RESPONSE_DESCRIPTION = _e("responseDescription")
T_REPORT_REQUEST_ID = _e("reportRequestID")
T_REPORT_SPECIFIER_ID = _e("reportSpecifierID")
T_REPORT_SPECIFIER = _e("reportSpecifier")
T_REPORT_NAME = _e("reportName")
T_REPORT_ID = _e("eiReportID")
T_CREATED_DT = _e("createdDateTime")
T_RID = _e("rID")
T_REPORT_TYPE = _e("reportType")
T_READING_TYPE = _e("readingType")
T_REPORT_SUBJECT = _e("reportSubject")
T_REPORT_DATA_SOURCE = _e("reportDataSource")
T_RESOURCE_ID = _e("resourceID")
T_GROUP_ID = _e("groupID")
T_PARTY_ID = _e("partyID")
T_INTERVAL = _e("interval")
T_CONFIDENCE = _e("confidence")
T_ACCURACY = _e("accuracy")
T_PAYLOAD_FLOAT = _e("payloadFloat")
T_VALUE = _e("value")
T_REPORT_BACK_DURATION = _e("reportBackDuration")
T_REPORT_INTERVAL = _e("reportInterval")
T_SPECIFIER_PAYLOAD = _e("specifierPayload")
T_EVENT_RESPONSES = _e("eventResponses")
T_EVENT_RESPONSE = _e("eventResponse")
T_QUALIFIED_EVENT_ID = _e("qualifiedEventID")
T_EVENT_ID = _e("eventID")
T_MODIFICATION_NUMBER = _e("modificationNumber")
T_OPT_TYPE = _e("optType")
T_OPT_ID = _e("optID")
T_OPT_REASON = _e("optReason")
T_EI_TARGET = _e("eiTarget")

T_DTSTART = _x("dtstart")
T_DATE_TIME = _x("date-time")
T_DURATION = _x("duration")
T_UID = _x("uid")
T_TEXT = _x("text")
T_GRANULARITY = _x("granularity")
T_PROPERTIES = _x("properties")
T_VAVAILABILITY = _x("vavailability")
T_COMPONENTS = _x("components")
T_AVAILABLE = _x("available")

T_REPORT = _o("oadrReport")
T_REPORT_DESCRIPTION = _o("oadrReportDescription")
T_REPORT_PAYLOAD = _o("oadrReportPayload")
T_RESOURCE_STATUS = _o("oadrPayloadResourceStatus")
T_ONLINE = _o("oadrOnline")
T_MANUAL_OVERRIDE = _o("oadrManualOverride")
T_LOAD_CONTROL_STATE = _o("oadrLoadControlState")
T_DATA_QUALITY = _o("oadrDataQuality")
T_SAMPLING_RATE = _o("oadrSamplingRate")
T_MIN_PERIOD = _o("oadrMinPeriod")
T_MAX_PERIOD = _o("oadrMaxPeriod")
T_ON_CHANGE = _o("oadrOnChange")
T_REPORT_REQUEST = _o("oadrReportRequest")
T_PENDING_REPORTS = _o("oadrPendingReports")
T_CANCEL_REPORT = _o("oadrCancelReport")
T_PROFILES = _o("oadrProfiles")
T_PROFILE_NAME = _o("oadrProfileName")
T_TRANSPORTS = _o("oadrTransports")
T_TRANSPORT_NAME = _o("oadrTransportName")
T_POLL_FREQ = _o("oadrRequestedOadrPollFreq")
T_SERVICE_INFO = _o("oadrServiceSpecificInfo")
T_SERVICE_NAME = _o("oadrServiceName")
T_INFO = _o("oadrInfo")
T_KEY = _o("oadrKey")
T_VALUE_O = _o("oadrValue")

# oadrLoadControlState children -> ResourceStatus.load_control keys.
_LOAD_CONTROL_KEYS = {
    _o("oadrCapacity"): "capacity",
    _o("oadrLevelOffset"): "levelOffset",
    _o("oadrPercentOffset"): "percentOffset",
    _o("oadrSetPoint"): "setPoint",
}
_LOAD_CONTROL_FIELDS = {
    _o("oadrMin"): "min",
    _o("oadrMax"): "max",
    _o("oadrCurrent"): "current",
    _o("oadrNormal"): "normal",
}
_ITEM_PREFIX = {uri: prefix for prefix, uri in ITEM_NAMESPACES.items()}


class _Missing(ValueError):
    """A required element is absent (only reachable with validate=False)."""


# --- scalar converters ---------------------------------------------------------------


def _text(el: _El) -> str:
    return el.text or ""


def _bool_str(raw: str | None) -> bool:
    s = (raw or "").strip()
    if s == "true" or s == "1":
        return True
    if s == "false" or s == "0":
        return False
    raise ValueError(f"not an xs:boolean: {raw!r}")


def _bool(el: _El) -> bool:
    return _bool_str(el.text)


def _float(el: _El) -> float:
    return float(el.text or "")


def _int(el: _El) -> int:
    return int(el.text or "")


def parse_datetime(raw: str) -> datetime:
    """xcal date-time -> aware UTC datetime (naive values are taken as UTC)."""
    dt = datetime.fromisoformat(raw.strip())
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt


_DURATION_RE = re.compile(
    r"([+-])?P(?:(\d+)W)?(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d+)?)S)?)?"
)


@lru_cache(maxsize=512)
def parse_duration(raw: str) -> timedelta:
    """ISO 8601 duration -> timedelta. Years/months are nominal (365/30 days)."""
    s = raw.strip()
    match = _DURATION_RE.fullmatch(s)
    if match is None:
        if s[:-1].isdigit() and s.endswith("W"):  # the XSD's odd bare "1W" branch
            return timedelta(weeks=int(s[:-1]))
        raise ValueError(f"not an ISO 8601 duration: {raw!r}")
    sign, w1, y, mo, w2, d, h, mi, sec = match.groups()
    days = int(y or 0) * 365 + int(mo or 0) * 30 + int(d or 0)
    weeks = int(w1 or 0) + int(w2 or 0)
    seconds = float(sec.replace(",", ".")) if sec else 0.0
    td = timedelta(weeks=weeks, days=days, hours=int(h or 0), minutes=int(mi or 0),
                   seconds=seconds)
    return -td if sign == "-" else td


def _child(el: _El, tag: str) -> _El:
    for c in el:
        if c.tag == tag:
            return c
    raise _Missing(f"{el.tag} lacks {tag}")


def _dt_prop(el: _El) -> datetime:
    """xcal:dtstart / date-time wrapper."""
    return parse_datetime(_child(el, T_DATE_TIME).text or "")


def _dt(el: _El) -> datetime:
    return parse_datetime(el.text or "")


def _dur_prop(el: _El) -> timedelta:
    """Any DurationPropType wrapper (xcal:duration/xcal:duration, granularity...)."""
    return parse_duration(_child(el, T_DURATION).text or "")


def _dur(el: _El) -> timedelta:
    return parse_duration(el.text or "")


# --- generic child collection ---------------------------------------------------------

# tag -> (field name, converter, repeated?)
_Spec = dict[str, tuple[str, Callable[[_El], Any], bool]]


def _collect(el: _El, spec: _Spec) -> dict[str, Any]:
    """Map direct children to dataclass kwargs; unknown children are ignored."""
    kw: dict[str, Any] = {}
    for c in el:
        s = spec.get(c.tag)
        if s is None:
            continue
        name, conv, multi = s
        if multi:
            kw.setdefault(name, []).append(conv(c))
        else:
            kw[name] = conv(c)
    return kw


def _simple(cls: type, spec: _Spec, **absent: Any) -> Callable[[_El], Any]:
    """Decoder for a flat message; ``absent`` overrides dataclass defaults for optional
    elements that are missing on the wire (None, per the messages contract)."""

    def build(el: _El) -> Any:
        kw = _collect(el, spec)
        for name, value in absent.items():
            kw.setdefault(name, value)
        return cls(**kw)

    return build


# --- building blocks -----------------------------------------------------------------


def _ei_response(el: _El) -> m.EiResponse:
    code: int | None = None
    description = ""
    request_id = ""
    for c in el:
        tag = c.tag
        if tag == T_RESPONSE_CODE:
            code = int(c.text or "")
        elif tag == T_RESPONSE_DESCRIPTION:
            description = c.text or ""
        elif tag == T_REQUEST_ID:
            request_id = c.text or ""
    if code is None:
        raise _Missing("eiResponse lacks responseCode")
    return m.EiResponse(code=code, description=description, request_id=request_id)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _item_base(el: _El) -> m.ItemBase:
    ns, _, kind = el.tag[1:].partition("}")
    fields: dict[str, Any] = {}
    for c in el:
        name = _local(c.tag)
        if name == "itemDescription":
            fields["description"] = c.text or ""
        elif name == "itemUnits":
            fields["units"] = c.text or ""
        elif name == "siScaleCode":
            fields["si_scale"] = (c.text or "").strip()
        elif name == "pulseFactor":
            fields["pulse_factor"] = _float(c)
        elif name == "powerAttributes":
            for a in c:
                an = _local(a.tag)
                if an == "hertz":
                    fields["hertz"] = _float(a)
                elif an == "voltage":
                    fields["voltage"] = _float(a)
                elif an == "ac":
                    fields["ac"] = _bool(a)
    fields.setdefault("description", "")
    fields.setdefault("units", "")
    return m.ItemBase(kind=kind, namespace=_ITEM_PREFIX.get(ns, ns), **fields)


def _properties(el: _El) -> tuple[datetime, timedelta]:
    """xcal:properties (or a wrapper holding it) -> (dtstart, duration)."""
    props = el if el.tag == T_PROPERTIES else _child(el, T_PROPERTIES)
    return _dt_prop(_child(props, T_DTSTART)), _dur_prop(_child(props, T_DURATION))



def _qualified_event_id(el: _El) -> tuple[str, int]:
    return _child(el, T_EVENT_ID).text or "", _int(_child(el, T_MODIFICATION_NUMBER))



_RID = ("request_id", _text, False)
_VEN = ("ven_id", _text, False)
_RESP = ("response", _ei_response, False)
_REG = ("registration_id", _text, False)
