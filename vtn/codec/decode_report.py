"""EiReport decoders: report descriptions, payloads, report requests and the messages."""

from __future__ import annotations

from typing import Any

from . import messages as m
from .decode_base import (
    _LOAD_CONTROL_FIELDS,
    _LOAD_CONTROL_KEYS,
    _RESP,
    _RID,
    _VEN,
    T_ACCURACY,
    T_CANCEL_REPORT,
    T_CONFIDENCE,
    T_CREATED_DT,
    T_DATA_QUALITY,
    T_DTSTART,
    T_DURATION,
    T_EI_RESPONSE,
    T_END_DEVICE_ASSET,
    T_GRANULARITY,
    T_GROUP_ID,
    T_INTERVAL,
    T_INTERVALS,
    T_LOAD_CONTROL_STATE,
    T_MANUAL_OVERRIDE,
    T_MARKET_CONTEXT,
    T_MAX_PERIOD,
    T_MIN_PERIOD,
    T_MRID,
    T_ON_CHANGE,
    T_ONLINE,
    T_PARTY_ID,
    T_PAYLOAD_FLOAT,
    T_PENDING_REPORTS,
    T_POS,
    T_POS_LIST,
    T_READING_TYPE,
    T_REPORT,
    T_REPORT_BACK_DURATION,
    T_REPORT_DATA_SOURCE,
    T_REPORT_DESCRIPTION,
    T_REPORT_ID,
    T_REPORT_INTERVAL,
    T_REPORT_NAME,
    T_REPORT_PAYLOAD,
    T_REPORT_REQUEST,
    T_REPORT_REQUEST_ID,
    T_REPORT_SPECIFIER,
    T_REPORT_SPECIFIER_ID,
    T_REPORT_SUBJECT,
    T_REPORT_TO_FOLLOW,
    T_REPORT_TYPE,
    T_REQUEST_ID,
    T_RESOURCE_ID,
    T_RESOURCE_STATUS,
    T_RID,
    T_SAMPLING_RATE,
    T_SERVICE_AREA,
    T_SERVICE_LOCATION,
    T_SPECIFIER_PAYLOAD,
    T_TEXT,
    T_UID,
    T_VALUE,
    T_VEN_ID,
    _bool,
    _child,
    _collect,
    _dt,
    _dt_prop,
    _dur,
    _dur_prop,
    _El,
    _float,
    _item_base,
    _Missing,
    _properties,
    _simple,
    _Spec,
    _text,
)


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
