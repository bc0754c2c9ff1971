"""EiEvent and EiOpt encoders, including the events of an oadrDistributeEvent."""

from __future__ import annotations

from . import messages as m
from .encode_base import (
    _dt_prop,
    _dur_prop,
    _ei_response,
    _item_base,
    _opt,
    _properties,
    _t,
    fmt_datetime,
    fmt_duration,
    fmt_float,
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


def _target(t: m.EventTarget) -> str:
    """ei:eiTarget children in XSD order (groupID, resourceID, venID, partyID)."""
    return (
        "<ei:eiTarget>"
        + "".join(_t("ei:groupID", g) for g in t.group_ids)
        + "".join(_t("ei:resourceID", r) for r in t.resource_ids)
        + "".join(_t("ei:venID", v) for v in t.ven_ids)
        + "".join(_t("ei:partyID", p) for p in t.party_ids)
        + "</ei:eiTarget>"
    )


def _payload_float(tag: str, value: float) -> str:
    value_el = f"<ei:value>{fmt_float(value)}</ei:value>"
    return f"<{tag}><ei:payloadFloat>{value_el}</ei:payloadFloat></{tag}>"


def _signal(s: m.EventSignal) -> str:
    parts = ["<ei:eiEventSignal><strm:intervals>"]
    for iv in s.intervals:
        parts.append(
            "<ei:interval>"
            + _dur_prop("xcal:duration", iv.duration)
            + f"<xcal:uid>{_t('xcal:text', iv.uid)}</xcal:uid>"
            + _payload_float("ei:signalPayload", iv.value)
            + "</ei:interval>"
        )
    parts.append("</strm:intervals>")
    if s.target is not None:
        parts.append(_target(s.target))
    parts.append(_t("ei:signalName", s.signal_name))
    parts.append(_t("ei:signalType", s.signal_type))
    parts.append(_t("ei:signalID", s.signal_id))
    if s.item_base is not None:
        parts.append(_item_base(s.item_base))
    if s.current_value is not None:
        parts.append(_payload_float("ei:currentValue", s.current_value))
    parts.append("</ei:eiEventSignal>")
    return "".join(parts)


def _active_period(e: m.Event) -> str:
    parts = [
        "<ei:eiActivePeriod><xcal:properties>",
        _dt_prop("xcal:dtstart", e.dtstart),
        _dur_prop("xcal:duration", e.duration),
    ]
    if e.start_after is not None:
        parts.append(
            "<xcal:tolerance><xcal:tolerate><xcal:startafter>"
            f"{fmt_duration(e.start_after)}</xcal:startafter></xcal:tolerate></xcal:tolerance>"
        )
    for tag, value in (
        ("ei:x-eiNotification", e.notification),
        ("ei:x-eiRampUp", e.ramp_up),
        ("ei:x-eiRecovery", e.recovery),
    ):
        if value is not None:
            parts.append(_dur_prop(tag, value))
    parts.append('</xcal:properties><xcal:components/></ei:eiActivePeriod>')
    return "".join(parts)


def _descriptor(e: m.Event) -> str:
    parts = [
        "<ei:eventDescriptor>",
        _t("ei:eventID", e.event_id),
        f"<ei:modificationNumber>{int(e.modification_number)}</ei:modificationNumber>",
    ]
    if e.modification_date_time is not None:
        parts.append(
            f"<ei:modificationDateTime>{fmt_datetime(e.modification_date_time)}"
            "</ei:modificationDateTime>"
        )
    parts.append(_opt("ei:modificationReason", e.modification_reason))
    if e.priority is not None:
        parts.append(f"<ei:priority>{int(e.priority)}</ei:priority>")
    parts.append(
        f"<ei:eiMarketContext>{_t('emix:marketContext', e.market_context)}</ei:eiMarketContext>"
    )
    parts.append(f"<ei:createdDateTime>{fmt_datetime(e.created_date_time)}</ei:createdDateTime>")
    parts.append(_t("ei:eventStatus", e.event_status))
    parts.append(_opt("ei:testEvent", e.test_event))
    parts.append(_opt("ei:vtnComment", e.vtn_comment))
    parts.append("</ei:eventDescriptor>")
    return "".join(parts)


def encode_event(e: m.Event) -> str:
    """One oadr:oadrEvent element (also used to cache a stored event's wire form)."""
    return (
        "<oadr:oadrEvent><ei:eiEvent>"
        + _descriptor(e)
        + _active_period(e)
        + "<ei:eiEventSignals>"
        + "".join(map(_signal, e.signals))
        + "</ei:eiEventSignals>"
        + _target(e.target)
        + "</ei:eiEvent>"
        + _t("oadr:oadrResponseRequired", e.response_required)
        + "</oadr:oadrEvent>"
    )


def _distribute_event(x: m.DistributeEvent) -> str:
    resp = "" if x.response is None else _ei_response(x.response)
    return (
        resp
        + _t("pyld:requestID", x.request_id)
        + _t("ei:vtnID", x.vtn_id)
        + "".join(map(encode_event, x.events))
    )


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
