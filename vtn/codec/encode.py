"""Wire dataclasses -> OpenADR 2.0b XML bytes.

Built by string concatenation (no lxml tree) because replies are produced on every poll.
All namespaces are declared once on oadrPayload; elements follow the XSD sequence order.
Output validates against oadr_20b.xsd given schema-legal field values (enumerations such
as reportName, readingType, itemUnits are passed through as given).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from . import messages as m
from .xmlsafe import (
    ITEM_NAMESPACES,
    NS_EI,
    NS_EMIX,
    NS_GML,
    NS_OADR,
    NS_POWER,
    NS_PYLD,
    NS_SCALE,
    NS_STRM,
    NS_XCAL,
)

_PREFIX_OF = {NS_POWER: "power", NS_OADR: "oadr", NS_EMIX: "emix"}
_XML_DECL = '<?xml version="1.0" encoding="utf-8"?>\n'
_SIGNED_OPEN = '<oadr:oadrSignedObject oadr:Id="oadrSignedObject">'
# Optional namespaces, declared on oadrPayload only when the body uses the prefix: each
# extra declaration costs the receiver's parser ~0.4 µs, a third of an oadrPoll parse.
_OPTIONAL_NS = (
    ("pyld", NS_PYLD),
    ("emix", NS_EMIX),
    ("power", NS_POWER),
    ("scale", NS_SCALE),
    ("xcal", NS_XCAL),
    ("strm", NS_STRM),
    ("gml", NS_GML),
)
_ROOT_OPEN = f'<oadr:oadrPayload xmlns:oadr="{NS_OADR}" xmlns:ei="{NS_EI}"'
_TAIL = "</oadr:oadrSignedObject></oadr:oadrPayload>"

# oadrLoadControlState children in XSD order.
_LOAD_CONTROL_ORDER = (
    ("capacity", "oadr:oadrCapacity"),
    ("levelOffset", "oadr:oadrLevelOffset"),
    ("percentOffset", "oadr:oadrPercentOffset"),
    ("setPoint", "oadr:oadrSetPoint"),
)
_POWER_ITEMS = frozenset({"powerReal", "powerApparent", "powerReactive"})
# openleadr's PowerAttributes defaults, used when a power* item lacks them (XSD requires).
_DEFAULT_POWER_ATTRS = (50.0, 230.0, True)


# --- scalar formatting ------------------------------------------------------------------


def esc(s: str) -> str:
    """Escape element text (&, <, > and CR, which parsers would otherwise normalise)."""
    if "&" in s or "<" in s or ">" in s or "\r" in s:
        s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        s = s.replace("\r", "&#13;")
    return s


def fmt_datetime(dt: datetime) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SS(.ffffff)Z``; naive datetimes are taken as UTC."""
    if dt.tzinfo is not None and dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.replace(tzinfo=None).isoformat() + "Z"


@lru_cache(maxsize=512)
def fmt_duration(td: timedelta) -> str:
    """ISO 8601 duration (P1DT2H, PT0S, -PT5M). Sub-second parts are rounded, as the
    XSD pattern admits whole seconds only."""
    if td < timedelta(0):
        return "-" + fmt_duration(-td)
    total = round(td.total_seconds())
    if total == 0:
        return "PT0S"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = f"P{days}D" if days else "P"
    if rest or hours:
        out += "T"
        if hours:
            out += f"{hours}H"
        if minutes:
            out += f"{minutes}M"
        if seconds:
            out += f"{seconds}S"
    return out


def fmt_float(x: float) -> str:
    """xs:float lexical form (INF/-INF/NaN spelled as XSD wants)."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "INF" if x > 0 else "-INF"
    return repr(float(x))


def fmt_decimal(x: float) -> str:
    """xs:decimal lexical form (no exponent allowed)."""
    s = repr(float(x))
    if "e" in s or "E" in s:
        s = format(Decimal(s), "f")
    return s


def fmt_bool(b: bool) -> str:
    return "true" if b else "false"


def _t(tag: str, text: str) -> str:
    return f"<{tag}>{esc(text)}</{tag}>"


def _opt(tag: str, text: str | None) -> str:
    return "" if text is None else f"<{tag}>{esc(text)}</{tag}>"


def _dt_prop(tag: str, dt: datetime) -> str:
    return f"<{tag}><xcal:date-time>{fmt_datetime(dt)}</xcal:date-time></{tag}>"


def _dur_prop(tag: str, td: timedelta) -> str:
    return f"<{tag}><xcal:duration>{fmt_duration(td)}</xcal:duration></{tag}>"


def _properties(dtstart: datetime, duration: timedelta) -> str:
    return (
        "<xcal:properties>"
        + _dt_prop("xcal:dtstart", dtstart)
        + _dur_prop("xcal:duration", duration)
        + "</xcal:properties>"
    )


# --- building blocks --------------------------------------------------------------------


def _ei_response(r: m.EiResponse, tag: str = "ei:eiResponse") -> str:
    return (
        f"<{tag}><ei:responseCode>{int(r.code):03d}</ei:responseCode>"
        f"{_t('ei:responseDescription', r.description)}{_t('pyld:requestID', r.request_id)}"
        f"</{tag}>"
    )


def _item_base(item: m.ItemBase) -> str:
    prefix = item.namespace if item.namespace in ITEM_NAMESPACES else None
    if prefix is None:  # a namespace URI kept from a foreign document
        prefix = _PREFIX_OF.get(item.namespace, "x")
        open_tag = f'<{prefix}:{item.kind} xmlns:{prefix}="{esc(item.namespace)}">'
    else:
        open_tag = f"<{prefix}:{item.kind}>"
    parts = [
        open_tag,
        _t(f"{prefix}:itemDescription", item.description),
        _t(f"{prefix}:itemUnits", item.units),
    ]
    if item.pulse_factor is not None:
        parts.append(f"<oadr:pulseFactor>{fmt_float(item.pulse_factor)}</oadr:pulseFactor>")
    else:
        parts.append(_t("scale:siScaleCode", item.si_scale))
    attrs = (item.hertz, item.voltage, item.ac)
    if attrs != (None, None, None) or item.kind in _POWER_ITEMS:
        hertz, voltage, ac = (
            d if v is None else v for v, d in zip(attrs, _DEFAULT_POWER_ATTRS, strict=True)
        )
        parts.append(
            f"<power:powerAttributes><power:hertz>{fmt_decimal(hertz)}</power:hertz>"
            f"<power:voltage>{fmt_decimal(voltage)}</power:voltage>"
            f"<power:ac>{fmt_bool(ac)}</power:ac></power:powerAttributes>"
        )
    parts.append(f"</{prefix}:{item.kind}>")
    return "".join(parts)


def _service_location(location: tuple[float, float]) -> str:
    """A point as power:serviceLocation: the profile's GML only has polygons, so write a
    degenerate closed ring of four identical "lat lon" positions."""
    lat, lon = location
    pos = f"{fmt_float(lat)} {fmt_float(lon)}"
    return (
        "<power:serviceLocation><gml:FeatureCollection><gml:location><gml:Polygon>"
        f"<gml:exterior><gml:LinearRing><gml:posList>{pos} {pos} {pos} {pos}</gml:posList>"
        "</gml:LinearRing></gml:exterior></gml:Polygon></gml:location>"
        "</gml:FeatureCollection></power:serviceLocation>"
    )


def _report_description(d: m.ReportDescription) -> str:
    parts = ["<oadr:oadrReportDescription>", _t("ei:rID", d.r_id)]
    if d.subject_mrids:
        parts.append("<ei:reportSubject>")
        parts.extend(
            f"<power:endDeviceAsset>{_t('power:mrid', mrid)}</power:endDeviceAsset>"
            for mrid in d.subject_mrids
        )
        parts.append("</ei:reportSubject>")
    if d.resource_id is not None or d.source_ven_id is not None or d.location is not None:
        parts.append(
            "<ei:reportDataSource>"
            + ("" if d.location is None else _service_location(d.location))
            + _opt("ei:resourceID", d.resource_id)
            + _opt("ei:venID", d.source_ven_id)
            + "</ei:reportDataSource>"
        )
    parts.append(_t("ei:reportType", d.report_type))
    if d.item is not None:
        parts.append(_item_base(d.item))
    parts.append(_t("ei:readingType", d.reading_type))
    parts.append(_opt("emix:marketContext", d.market_context))
    s = d.sampling_rate
    if s is not None:
        parts.append(
            f"<oadr:oadrSamplingRate><oadr:oadrMinPeriod>{fmt_duration(s.min_period)}"
            f"</oadr:oadrMinPeriod><oadr:oadrMaxPeriod>{fmt_duration(s.max_period)}"
            f"</oadr:oadrMaxPeriod><oadr:oadrOnChange>{fmt_bool(s.on_change)}"
            "</oadr:oadrOnChange></oadr:oadrSamplingRate>"
        )
    parts.append("</oadr:oadrReportDescription>")
    return "".join(parts)


def _load_control_value(tag: str, v: m.LoadControlValue) -> str:
    out = f"<{tag}>"
    if v.min is not None:
        out += f"<oadr:oadrMin>{fmt_float(v.min)}</oadr:oadrMin>"
    if v.max is not None:
        out += f"<oadr:oadrMax>{fmt_float(v.max)}</oadr:oadrMax>"
    out += f"<oadr:oadrCurrent>{fmt_float(v.current)}</oadr:oadrCurrent>"
    if v.normal is not None:
        out += f"<oadr:oadrNormal>{fmt_float(v.normal)}</oadr:oadrNormal>"
    return out + f"</{tag}>"


def _resource_status(s: m.ResourceStatus) -> str:
    out = (
        f"<oadr:oadrPayloadResourceStatus><oadr:oadrOnline>{fmt_bool(s.online)}"
        f"</oadr:oadrOnline><oadr:oadrManualOverride>{fmt_bool(s.manual_override)}"
        "</oadr:oadrManualOverride>"
    )
    if s.load_control:
        unknown = set(s.load_control) - {k for k, _ in _LOAD_CONTROL_ORDER}
        if unknown:
            raise ValueError(f"unknown load_control keys: {sorted(unknown)}")
        out += "<oadr:oadrLoadControlState>"
        for key, tag in _LOAD_CONTROL_ORDER:
            value = s.load_control.get(key)
            if value is not None:
                out += _load_control_value(tag, value)
        out += "</oadr:oadrLoadControlState>"
    return out + "</oadr:oadrPayloadResourceStatus>"


def _report_payload(p: m.ReportPayload) -> str:
    out = f"<oadr:oadrReportPayload><ei:rID>{esc(p.r_id)}</ei:rID>"
    if p.confidence is not None:
        out += f"<ei:confidence>{int(p.confidence)}</ei:confidence>"
    if p.accuracy is not None:
        out += f"<ei:accuracy>{fmt_float(p.accuracy)}</ei:accuracy>"
    if p.status is not None:
        out += _resource_status(p.status)
    elif p.value is not None:
        out += f"<ei:payloadFloat><ei:value>{fmt_float(p.value)}</ei:value></ei:payloadFloat>"
    else:
        raise ValueError(f"report payload {p.r_id!r} has neither value nor status")
    if p.data_quality is not None:
        out += _t("oadr:oadrDataQuality", p.data_quality)
    return out + "</oadr:oadrReportPayload>"


def _interval(iv: m.ReportInterval) -> str:
    out = "<ei:interval>"
    if iv.dtstart is not None:
        out += _dt_prop("xcal:dtstart", iv.dtstart)
    if iv.duration is not None:
        out += _dur_prop("xcal:duration", iv.duration)
    if iv.uid is not None:
        out += f"<xcal:uid>{_t('xcal:text', iv.uid)}</xcal:uid>"
    return out + "".join(map(_report_payload, iv.payloads)) + "</ei:interval>"


def _report(r: m.Report) -> str:
    parts = ["<oadr:oadrReport>"]
    if r.dtstart is not None:
        parts.append(_dt_prop("xcal:dtstart", r.dtstart))
    if r.duration is not None:
        parts.append(_dur_prop("xcal:duration", r.duration))
    if r.intervals:
        parts.append("<strm:intervals>")
        parts.extend(map(_interval, r.intervals))
        parts.append("</strm:intervals>")
    parts.append(_opt("ei:eiReportID", r.report_id))
    parts.extend(map(_report_description, r.descriptions))
    parts.append(_t("ei:reportRequestID", r.report_request_id))
    parts.append(_t("ei:reportSpecifierID", r.report_specifier_id))
    if r.report_name:
        parts.append(_t("ei:reportName", r.report_name))
    parts.append(f"<ei:createdDateTime>{fmt_datetime(r.created_date_time)}</ei:createdDateTime>")
    parts.append("</oadr:oadrReport>")
    return "".join(parts)


def _specifier_payload(p: m.SpecifierPayload) -> str:
    item = "" if p.item is None else _item_base(p.item)
    return (
        f"<ei:specifierPayload>{_t('ei:rID', p.r_id)}{item}"
        f"{_t('ei:readingType', p.reading_type)}</ei:specifierPayload>"
    )


def _report_request(r: m.ReportRequest) -> str:
    """A reportInterval needs both dtstart and duration: a missing duration is PT0S."""
    interval = ""
    if r.interval_start is not None:
        interval = (
            "<ei:reportInterval>"
            + _properties(r.interval_start, r.interval_duration or timedelta(0))
            + "</ei:reportInterval>"
        )
    return (
        "<oadr:oadrReportRequest>"
        + _t("ei:reportRequestID", r.report_request_id)
        + "<ei:reportSpecifier>"
        + _t("ei:reportSpecifierID", r.report_specifier_id)
        + _dur_prop("xcal:granularity", r.granularity)
        + _dur_prop("ei:reportBackDuration", r.report_back_duration)
        + interval
        + "".join(map(_specifier_payload, r.specifier_payloads))
        + "</ei:reportSpecifier></oadr:oadrReportRequest>"
    )


def _pending(ids: list[str]) -> str:
    inner = "".join(_t("ei:reportRequestID", i) for i in ids)
    return f"<oadr:oadrPendingReports>{inner}</oadr:oadrPendingReports>"


def _cancel_report_body(c: m.CancelReport) -> str:
    return (
        _t("pyld:requestID", c.request_id)
        + "".join(_t("ei:reportRequestID", i) for i in c.report_request_ids)
        + f"<pyld:reportToFollow>{fmt_bool(c.report_to_follow)}</pyld:reportToFollow>"
        + _opt("ei:venID", c.ven_id)
    )


def _qualified_event_id(event_id: str, modification_number: int) -> str:
    return (
        f"<ei:qualifiedEventID>{_t('ei:eventID', event_id)}"
        f"<ei:modificationNumber>{int(modification_number)}</ei:modificationNumber>"
        "</ei:qualifiedEventID>"
    )


def _event_response(r: m.EventResponse) -> str:
    resp = r.response
    return (
        f"<ei:eventResponse><ei:responseCode>{int(resp.code):03d}</ei:responseCode>"
        f"{_t('ei:responseDescription', resp.description)}"
        f"{_t('pyld:requestID', resp.request_id)}"
        f"{_qualified_event_id(r.event_id, r.modification_number)}"
        f"{_t('ei:optType', r.opt_type)}</ei:eventResponse>"
    )


def _profiles(profiles: list[tuple[str, list[str]]]) -> str:
    parts = ["<oadr:oadrProfiles>"]
    for name, transports in profiles:
        parts.append(f"<oadr:oadrProfile>{_t('oadr:oadrProfileName', name)}<oadr:oadrTransports>")
        parts.extend(
            f"<oadr:oadrTransport>{_t('oadr:oadrTransportName', t)}</oadr:oadrTransport>"
            for t in transports
        )
        parts.append("</oadr:oadrTransports></oadr:oadrProfile>")
    parts.append("</oadr:oadrProfiles>")
    return "".join(parts)


def _service_info(info: dict[str, dict[str, str]]) -> str:
    """Services without key/value pairs are skipped (XSD needs at least one oadrInfo)."""
    parts = ["<oadr:oadrServiceSpecificInfo>"]
    for service, pairs in info.items():
        if not pairs:
            continue
        parts.append(f"<oadr:oadrService>{_t('oadr:oadrServiceName', service)}")
        parts.extend(
            f"<oadr:oadrInfo>{_t('oadr:oadrKey', k)}{_t('oadr:oadrValue', v)}</oadr:oadrInfo>"
            for k, v in pairs.items()
        )
        parts.append("</oadr:oadrService>")
    parts.append("</oadr:oadrServiceSpecificInfo>")
    return "".join(parts)


# --- message bodies ---------------------------------------------------------------------


def _query_registration(x: m.QueryRegistration) -> str:
    return _t("pyld:requestID", x.request_id)


def _create_party_registration(x: m.CreatePartyRegistration) -> str:
    pull = "" if x.http_pull_model is None else (
        f"<oadr:oadrHttpPullModel>{fmt_bool(x.http_pull_model)}</oadr:oadrHttpPullModel>"
    )
    return (
        _t("pyld:requestID", x.request_id)
        + _opt("ei:registrationID", x.registration_id)
        + _opt("ei:venID", x.ven_id)
        + _t("oadr:oadrProfileName", x.profile_name)
        + _t("oadr:oadrTransportName", x.transport_name)
        + _opt("oadr:oadrTransportAddress", x.transport_address)
        + f"<oadr:oadrReportOnly>{fmt_bool(x.report_only)}</oadr:oadrReportOnly>"
        + f"<oadr:oadrXmlSignature>{fmt_bool(x.xml_signature)}</oadr:oadrXmlSignature>"
        + _opt("oadr:oadrVenName", x.ven_name)
        + pull
    )


def _created_party_registration(x: m.CreatedPartyRegistration) -> str:
    out = (
        _ei_response(x.response)
        + _opt("ei:registrationID", x.registration_id)
        + _opt("ei:venID", x.ven_id)
        + _t("ei:vtnID", x.vtn_id)
        + _profiles(x.profiles)
    )
    if x.poll_freq is not None:
        out += _dur_prop("oadr:oadrRequestedOadrPollFreq", x.poll_freq)
    if x.service_specific_info:
        out += _service_info(x.service_specific_info)
    return out


def _cancel_party_registration(x: m.CancelPartyRegistration) -> str:
    return (
        _t("pyld:requestID", x.request_id)
        + _t("ei:registrationID", x.registration_id)
        + _opt("ei:venID", x.ven_id)
    )


def _canceled_party_registration(x: m.CanceledPartyRegistration) -> str:
    return (
        _ei_response(x.response)
        + _opt("ei:registrationID", x.registration_id)
        + _opt("ei:venID", x.ven_id)
    )


def _request_reregistration(x: m.RequestReregistration) -> str:
    return _t("ei:venID", x.ven_id)


def _response(x: m.Response) -> str:
    return _ei_response(x.response) + _opt("ei:venID", x.ven_id)


def _poll(x: m.Poll) -> str:
    return _t("ei:venID", x.ven_id)


def _register_report(x: m.RegisterReport) -> str:
    return (
        _t("pyld:requestID", x.request_id)
        + "".join(map(_report, x.reports))
        + _opt("ei:venID", x.ven_id)
        + _opt("ei:reportRequestID", x.report_request_id)
    )


def _registered_report(x: m.RegisteredReport) -> str:
    return (
        _ei_response(x.response)
        + "".join(map(_report_request, x.report_requests))
        + _opt("ei:venID", x.ven_id)
    )


def _create_report(x: m.CreateReport) -> str:
    return (
        _t("pyld:requestID", x.request_id)
        + "".join(map(_report_request, x.report_requests))
        + _opt("ei:venID", x.ven_id)
    )


def _created_report(x: m.CreatedReport | m.CanceledReport) -> str:
    return (
        _ei_response(x.response)
        + _pending(x.pending_report_request_ids)
        + _opt("ei:venID", x.ven_id)
    )


def _update_report(x: m.UpdateReport) -> str:
    return (
        _t("pyld:requestID", x.request_id)
        + "".join(map(_report, x.reports))
        + _opt("ei:venID", x.ven_id)
    )


def _updated_report(x: m.UpdatedReport) -> str:
    cancel = ""
    if x.cancel_report is not None:
        body = _cancel_report_body(x.cancel_report)
        cancel = f"<oadr:oadrCancelReport>{body}</oadr:oadrCancelReport>"
    return _ei_response(x.response) + cancel + _opt("ei:venID", x.ven_id)


def _request_event(x: m.RequestEvent) -> str:
    limit = ""
    if x.reply_limit is not None:
        limit = f"<pyld:replyLimit>{int(x.reply_limit)}</pyld:replyLimit>"
    return (
        "<pyld:eiRequestEvent>"
        + _t("pyld:requestID", x.request_id)
        + _t("ei:venID", x.ven_id)
        + limit
        + "</pyld:eiRequestEvent>"
    )


def _created_event(x: m.CreatedEvent) -> str:
    responses = ""
    if x.event_responses:
        responses = (
            "<ei:eventResponses>"
            + "".join(map(_event_response, x.event_responses))
            + "</ei:eventResponses>"
        )
    return (
        "<pyld:eiCreatedEvent>"
        + _ei_response(x.response)
        + responses
        + _t("ei:venID", x.ven_id)
        + "</pyld:eiCreatedEvent>"
    )


def _distribute_event(x: m.DistributeEvent) -> str:
    resp = "" if x.response is None else _ei_response(x.response)
    return resp + _t("pyld:requestID", x.request_id) + _t("ei:vtnID", x.vtn_id)


def _create_opt(x: m.CreateOpt) -> str:
    parts = [
        _t("ei:optID", x.opt_id),
        _t("ei:optType", x.opt_type),
        _t("ei:optReason", x.opt_reason),
        _opt("emix:marketContext", x.market_context),
        _t("ei:venID", x.ven_id),
    ]
    if x.availability:
        parts.append("<xcal:vavailability><xcal:components>")
        parts.extend(
            f"<xcal:available>{_properties(start, dur)}</xcal:available>"
            for start, dur in x.availability
        )
        parts.append("</xcal:components></xcal:vavailability>")
    parts.append(f"<ei:createdDateTime>{fmt_datetime(x.created_date_time)}</ei:createdDateTime>")
    parts.append(_t("pyld:requestID", x.request_id))
    if x.event_id is not None:
        parts.append(_qualified_event_id(x.event_id, x.modification_number or 0))
    parts.append("<ei:eiTarget>")
    parts.extend(_t("ei:resourceID", r) for r in x.resource_ids)
    parts.append("</ei:eiTarget>")
    return "".join(parts)


def _created_opt(x: m.CreatedOpt | m.CanceledOpt) -> str:
    return _ei_response(x.response) + _t("ei:optID", x.opt_id)


def _cancel_opt(x: m.CancelOpt) -> str:
    return _t("pyld:requestID", x.request_id) + _t("ei:optID", x.opt_id) + _t("ei:venID", x.ven_id)


_ENCODERS: dict[type, Callable[[Any], str]] = {
    m.QueryRegistration: _query_registration,
    m.CreatePartyRegistration: _create_party_registration,
    m.CreatedPartyRegistration: _created_party_registration,
    m.CancelPartyRegistration: _cancel_party_registration,
    m.CanceledPartyRegistration: _canceled_party_registration,
    m.RequestReregistration: _request_reregistration,
    m.Response: _response,
    m.Poll: _poll,
    m.RegisterReport: _register_report,
    m.RegisteredReport: _registered_report,
    m.CreateReport: _create_report,
    m.CreatedReport: _created_report,
    m.UpdateReport: _update_report,
    m.UpdatedReport: _updated_report,
    m.CancelReport: _cancel_report_body,
    m.CanceledReport: _created_report,
    m.RequestEvent: _request_event,
    m.CreatedEvent: _created_event,
    m.DistributeEvent: _distribute_event,
    m.CreateOpt: _create_opt,
    m.CreatedOpt: _created_opt,
    m.CancelOpt: _cancel_opt,
    m.CanceledOpt: _created_opt,
}
# Precomputed open/close tags per type.
_WRAP: dict[type, tuple[str, str]] = {
    cls: (f'<oadr:{name} ei:schemaVersion="2.0b">', f"</oadr:{name}>")
    for cls, name in m.ELEMENT_NAMES.items()
}
assert set(_ENCODERS) == set(_WRAP)

# (needle, declaration) pairs; per type, only the prefixes its body can contain.
_ALL_NS = tuple((f"<{prefix}:", f' xmlns:{prefix}="{uri}"') for prefix, uri in _OPTIONAL_NS)
_PYLD_ONLY = _ALL_NS[:1]
_NS_CANDIDATES: dict[type, tuple[tuple[str, str], ...]] = {
    m.Poll: (),
    m.RequestReregistration: (),
    m.CreatedPartyRegistration: tuple(n for n in _ALL_NS if n[0] in ("<pyld:", "<xcal:")),
    m.CreateOpt: tuple(n for n in _ALL_NS if n[0] in ("<pyld:", "<emix:", "<xcal:")),
    **{
        cls: _PYLD_ONLY
        for cls in (
            m.QueryRegistration, m.CreatePartyRegistration, m.CancelPartyRegistration,
            m.CanceledPartyRegistration, m.Response, m.CreatedReport, m.CanceledReport,
            m.CancelReport, m.UpdatedReport, m.RequestEvent, m.CreatedEvent,
            m.DistributeEvent, m.CreatedOpt, m.CancelOpt, m.CanceledOpt,
        )
    },
}


def encode(msg: m.Message) -> bytes:
    """Serialise one message as a complete oadrPayload document (UTF-8 bytes)."""
    cls = type(msg)
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        raise TypeError(f"not an OpenADR message type: {cls.__name__}")
    open_tag, close_tag = _WRAP[cls]
    body = encoder(msg)
    root = _ROOT_OPEN
    for needle, decl in _NS_CANDIDATES.get(cls, _ALL_NS):
        if needle in body:
            root += decl
    return (
        _XML_DECL + root + ">" + _SIGNED_OPEN + open_tag + body + close_tag + _TAIL
    ).encode("utf-8")
