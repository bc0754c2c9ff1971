"""EiReport encoders: report descriptions, payloads, intervals, requests and messages."""

from __future__ import annotations

from datetime import timedelta

from . import messages as m
from .encode_base import (
    _LOAD_CONTROL_ORDER,
    _dt_prop,
    _dur_prop,
    _ei_response,
    _item_base,
    _opt,
    _properties,
    _service_location,
    _t,
    esc,
    fmt_bool,
    fmt_datetime,
    fmt_duration,
    fmt_float,
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
