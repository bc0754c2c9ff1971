"""OpenADR 2.0b XML -> wire dataclasses.

Mapping walks direct children and dispatches on precomputed Clark-notation tags (no
XPath), because decode sits on the hot path of every oadrPoll. Schema validation is a
separate, optional step on the already parsed tree.

Error contract: anything that prevents identifying the message is ``MalformedXml``; once
the message element is known, every content problem is ``SchemaInvalid`` carrying the
message name, so the service layer can answer with the right response type and 454.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from lxml import etree

from . import messages as m
from .errors import MalformedXml, SchemaInvalid
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
    parse_xml,
    schema_errors,
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


def _mrids(el: _El) -> list[str]:
    return [mrid.text or "" for asset in el if asset.tag == T_END_DEVICE_ASSET
            for mrid in asset if mrid.tag == T_MRID]


def _location(el: _El) -> tuple[float, float] | None:
    """serviceArea/serviceLocation -> (lat, lon): centroid of the distinct gml positions
    (a ring's closing point repeats the first, so duplicates are dropped)."""
    values: list[float] = []
    for pos in el.iter(T_POS_LIST, T_POS):
        values.extend(float(v) for v in (pos.text or "").split())
    points = list(dict.fromkeys(zip(values[0::2], values[1::2], strict=False)))
    if not points:
        return None
    if len(points) == 1:
        return points[0]
    n = len(points)
    return sum(p[0] for p in points) / n, sum(p[1] for p in points) / n


def _data_source(el: _El) -> tuple[str | None, str | None, tuple[float, float] | None]:
    """reportDataSource -> (resourceID, venID falling back to partyID/groupID, location)."""
    resource_id = ven_id = party_id = group_id = location = None
    for c in el:
        tag = c.tag
        if tag == T_SERVICE_LOCATION or tag == T_SERVICE_AREA:
            location = location or _location(c)
        elif tag == T_RESOURCE_ID and resource_id is None:
            resource_id = c.text or ""
        elif tag == T_VEN_ID and ven_id is None:
            ven_id = c.text or ""
        elif tag == T_PARTY_ID and party_id is None:
            party_id = c.text or ""
        elif tag == T_GROUP_ID and group_id is None:
            group_id = c.text or ""
    return resource_id, ven_id or party_id or group_id or ven_id, location


def _sampling_rate(el: _El) -> m.SamplingRate:
    kw = _collect(el, _SAMPLING_SPEC)
    return m.SamplingRate(**kw)


_SAMPLING_SPEC: _Spec = {
    T_MIN_PERIOD: ("min_period", _dur, False),
    T_MAX_PERIOD: ("max_period", _dur, False),
    T_ON_CHANGE: ("on_change", _bool, False),
}


def _report_description(el: _El) -> m.ReportDescription:
    kw: dict[str, Any] = {}
    for c in el:
        tag = c.tag
        if tag == T_RID:
            kw["r_id"] = c.text or ""
        elif tag == T_REPORT_TYPE:
            kw["report_type"] = c.text or ""
        elif tag == T_READING_TYPE:
            kw["reading_type"] = c.text or ""
        elif tag == T_REPORT_SUBJECT:
            kw["subject_mrids"] = _mrids(c)
        elif tag == T_REPORT_DATA_SOURCE:
            kw["resource_id"], kw["source_ven_id"], kw["location"] = _data_source(c)
        elif tag == T_MARKET_CONTEXT:
            kw["market_context"] = c.text or ""
        elif tag == T_SAMPLING_RATE:
            kw["sampling_rate"] = _sampling_rate(c)
        else:  # the only other allowed child is an emix:itemBase substitute
            kw["item"] = _item_base(c)
    return m.ReportDescription(**kw)


def _load_control_value(el: _El) -> m.LoadControlValue:
    kw = {}
    for c in el:
        name = _LOAD_CONTROL_FIELDS.get(c.tag)
        if name is not None:
            kw[name] = _float(c)
    return m.LoadControlValue(**kw)


def _resource_status(el: _El) -> m.ResourceStatus:
    online = manual = None
    load_control: dict[str, m.LoadControlValue] = {}
    for c in el:
        tag = c.tag
        if tag == T_ONLINE:
            online = _bool(c)
        elif tag == T_MANUAL_OVERRIDE:
            manual = _bool(c)
        elif tag == T_LOAD_CONTROL_STATE:
            for lc in c:
                key = _LOAD_CONTROL_KEYS.get(lc.tag)
                if key is not None:
                    load_control[key] = _load_control_value(lc)
    if online is None or manual is None:
        raise _Missing("oadrPayloadResourceStatus lacks oadrOnline/oadrManualOverride")
    return m.ResourceStatus(online=online, manual_override=manual, load_control=load_control)


def _report_payload(el: _El) -> m.ReportPayload:
    p = m.ReportPayload(r_id="")
    has_rid = False
    for c in el:
        tag = c.tag
        if tag == T_RID:
            p.r_id = c.text or ""
            has_rid = True
        elif tag == T_PAYLOAD_FLOAT:
            p.value = float(_child(c, T_VALUE).text or "")
        elif tag == T_RESOURCE_STATUS:
            p.status = _resource_status(c)
        elif tag == T_CONFIDENCE:
            p.confidence = int(c.text or "")
        elif tag == T_ACCURACY:
            p.accuracy = float(c.text or "")
        elif tag == T_DATA_QUALITY:
            p.data_quality = c.text or ""
    if not has_rid:
        raise _Missing("oadrReportPayload lacks rID")
    return p


def _interval(el: _El) -> m.ReportInterval:
    iv = m.ReportInterval(payloads=[])
    payloads = iv.payloads
    for c in el:
        tag = c.tag
        if tag == T_REPORT_PAYLOAD:
            payloads.append(_report_payload(c))
        elif tag == T_DTSTART:
            iv.dtstart = _dt_prop(c)
        elif tag == T_DURATION:
            iv.duration = _dur_prop(c)
        elif tag == T_UID:
            iv.uid = _child(c, T_TEXT).text or ""
    return iv


def _report(el: _El) -> m.Report:
    kw: dict[str, Any] = {"report_name": ""}
    descriptions: list[m.ReportDescription] = []
    intervals: list[m.ReportInterval] = []
    for c in el:
        tag = c.tag
        if tag == T_INTERVALS:
            intervals.extend(_interval(i) for i in c if i.tag == T_INTERVAL)
        elif tag == T_REPORT_DESCRIPTION:
            descriptions.append(_report_description(c))
        elif tag == T_REPORT_REQUEST_ID:
            kw["report_request_id"] = c.text or ""
        elif tag == T_REPORT_SPECIFIER_ID:
            kw["report_specifier_id"] = c.text or ""
        elif tag == T_REPORT_NAME:
            kw["report_name"] = c.text or ""
        elif tag == T_CREATED_DT:
            kw["created_date_time"] = _dt(c)
        elif tag == T_REPORT_ID:
            kw["report_id"] = c.text or ""
        elif tag == T_DTSTART:
            kw["dtstart"] = _dt_prop(c)
        elif tag == T_DURATION:
            kw["duration"] = _dur_prop(c)
    return m.Report(descriptions=descriptions, intervals=intervals, **kw)


def _specifier_payload(el: _El) -> m.SpecifierPayload:
    kw: dict[str, Any] = {}
    for c in el:
        tag = c.tag
        if tag == T_RID:
            kw["r_id"] = c.text or ""
        elif tag == T_READING_TYPE:
            kw["reading_type"] = c.text or ""
        else:
            kw["item"] = _item_base(c)
    return m.SpecifierPayload(**kw)


def _properties(el: _El) -> tuple[datetime, timedelta]:
    """xcal:properties (or a wrapper holding it) -> (dtstart, duration)."""
    props = el if el.tag == T_PROPERTIES else _child(el, T_PROPERTIES)
    return _dt_prop(_child(props, T_DTSTART)), _dur_prop(_child(props, T_DURATION))


def _report_request(el: _El) -> m.ReportRequest:
    kw: dict[str, Any] = {}
    payloads: list[m.SpecifierPayload] = []
    for c in el:
        if c.tag == T_REPORT_REQUEST_ID:
            kw["report_request_id"] = c.text or ""
        elif c.tag == T_REPORT_SPECIFIER:
            for s in c:
                tag = s.tag
                if tag == T_SPECIFIER_PAYLOAD:
                    payloads.append(_specifier_payload(s))
                elif tag == T_REPORT_SPECIFIER_ID:
                    kw["report_specifier_id"] = s.text or ""
                elif tag == T_GRANULARITY:
                    kw["granularity"] = _dur_prop(s)
                elif tag == T_REPORT_BACK_DURATION:
                    kw["report_back_duration"] = _dur_prop(s)
                elif tag == T_REPORT_INTERVAL:
                    kw["interval_start"], kw["interval_duration"] = _properties(s)
    return m.ReportRequest(specifier_payloads=payloads, **kw)


def _pending(el: _El) -> list[str]:
    return [c.text or "" for c in el if c.tag == T_REPORT_REQUEST_ID]


def _qualified_event_id(el: _El) -> tuple[str, int]:
    return _child(el, T_EVENT_ID).text or "", _int(_child(el, T_MODIFICATION_NUMBER))


def _event_response(el: _El) -> m.EventResponse:
    resp = _ei_response(el)
    event_id, mod = _qualified_event_id(_child(el, T_QUALIFIED_EVENT_ID))
    return m.EventResponse(response=resp, event_id=event_id, modification_number=mod,
                           opt_type=_child(el, T_OPT_TYPE).text or "")


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

_RID = ("request_id", _text, False)
_VEN = ("ven_id", _text, False)
_RESP = ("response", _ei_response, False)
_REG = ("registration_id", _text, False)

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
_register_report = _simple(m.RegisterReport, {
    T_REQUEST_ID: _RID,
    T_REPORT: ("reports", _report, True),
    T_VEN_ID: _VEN,
    T_REPORT_REQUEST_ID: ("report_request_id", _text, False),
})
_update_report = _simple(m.UpdateReport, {
    T_REQUEST_ID: _RID, T_REPORT: ("reports", _report, True), T_VEN_ID: _VEN,
})
_registered_report = _simple(m.RegisteredReport, {
    T_EI_RESPONSE: _RESP,
    T_REPORT_REQUEST: ("report_requests", _report_request, True),
    T_VEN_ID: _VEN,
})
_create_report = _simple(m.CreateReport, {
    T_REQUEST_ID: _RID,
    T_REPORT_REQUEST: ("report_requests", _report_request, True),
    T_VEN_ID: _VEN,
})
_PENDING = ("pending_report_request_ids", _pending, False)
_created_report = _simple(m.CreatedReport, {
    T_EI_RESPONSE: _RESP, T_PENDING_REPORTS: _PENDING, T_VEN_ID: _VEN,
})
_canceled_report = _simple(m.CanceledReport, {
    T_EI_RESPONSE: _RESP, T_PENDING_REPORTS: _PENDING, T_VEN_ID: _VEN,
})
_cancel_report = _simple(m.CancelReport, {
    T_REQUEST_ID: _RID,
    T_REPORT_REQUEST_ID: ("report_request_ids", _text, True),
    T_REPORT_TO_FOLLOW: ("report_to_follow", _bool, False),
    T_VEN_ID: _VEN,
})
_updated_report = _simple(m.UpdatedReport, {
    T_EI_RESPONSE: _RESP,
    T_CANCEL_REPORT: ("cancel_report", _cancel_report, False),
    T_VEN_ID: _VEN,
})
_distribute_event = _simple(m.DistributeEvent, {
    T_EI_RESPONSE: _RESP, T_REQUEST_ID: _RID, T_VTN_ID: ("vtn_id", _text, False),
})
_created_opt = _simple(m.CreatedOpt, {T_EI_RESPONSE: _RESP, T_OPT_ID: ("opt_id", _text, False)})
_canceled_opt = _simple(m.CanceledOpt, {
    T_EI_RESPONSE: _RESP, T_OPT_ID: ("opt_id", _text, False),
})
_cancel_opt = _simple(m.CancelOpt, {
    T_REQUEST_ID: _RID, T_OPT_ID: ("opt_id", _text, False), T_VEN_ID: _VEN,
})

_REQUEST_EVENT_SPEC: _Spec = {
    T_REQUEST_ID: _RID, T_VEN_ID: _VEN, T_REPLY_LIMIT: ("reply_limit", _int, False),
}


def _request_event(el: _El) -> m.RequestEvent:
    return m.RequestEvent(**_collect(_child(el, T_EI_REQUEST_EVENT), _REQUEST_EVENT_SPEC))


def _event_responses(el: _El) -> list[m.EventResponse]:
    return [_event_response(c) for c in el if c.tag == T_EVENT_RESPONSE]


_CREATED_EVENT_SPEC: _Spec = {
    T_EI_RESPONSE: _RESP,
    T_EVENT_RESPONSES: ("event_responses", _event_responses, False),
    T_VEN_ID: _VEN,
}


def _created_event(el: _El) -> m.CreatedEvent:
    return m.CreatedEvent(**_collect(_child(el, T_EI_CREATED_EVENT), _CREATED_EVENT_SPEC))


def _availability(el: _El) -> list[tuple[datetime, timedelta]]:
    comps = _child(el, T_COMPONENTS)
    return [_properties(a) for a in comps if a.tag == T_AVAILABLE]


def _resource_ids(el: _El) -> list[str]:
    return [c.text or "" for c in el if c.tag == T_RESOURCE_ID]


_CREATE_OPT_SPEC: _Spec = {
    T_OPT_ID: ("opt_id", _text, False),
    T_OPT_TYPE: ("opt_type", _text, False),
    T_OPT_REASON: ("opt_reason", _text, False),
    T_MARKET_CONTEXT: ("market_context", _text, False),
    T_VEN_ID: _VEN,
    T_VAVAILABILITY: ("availability", _availability, False),
    T_CREATED_DT: ("created_date_time", _dt, False),
    T_REQUEST_ID: _RID,
    T_QUALIFIED_EVENT_ID: ("qualified", _qualified_event_id, False),
    T_EI_TARGET: ("resource_ids", _resource_ids, False),
}


def _create_opt(el: _El) -> m.CreateOpt:
    kw = _collect(el, _CREATE_OPT_SPEC)
    qualified = kw.pop("qualified", None)
    if qualified is not None:
        kw["event_id"], kw["modification_number"] = qualified
    return m.CreateOpt(**kw)


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
