"""EiEvent and EiOpt decoders, including the events of an oadrDistributeEvent."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import messages as m
from .decode_base import (
    _RESP,
    _RID,
    _VEN,
    T_AVAILABLE,
    T_COMPONENTS,
    T_CREATED_DT,
    T_DTSTART,
    T_DURATION,
    T_EI_CREATED_EVENT,
    T_EI_REQUEST_EVENT,
    T_EI_RESPONSE,
    T_EI_TARGET,
    T_EVENT_ID,
    T_EVENT_RESPONSE,
    T_EVENT_RESPONSES,
    T_GROUP_ID,
    T_INTERVAL,
    T_INTERVALS,
    T_MARKET_CONTEXT,
    T_MODIFICATION_NUMBER,
    T_OPT_ID,
    T_OPT_REASON,
    T_OPT_TYPE,
    T_PARTY_ID,
    T_PAYLOAD_FLOAT,
    T_PROPERTIES,
    T_QUALIFIED_EVENT_ID,
    T_REPLY_LIMIT,
    T_REQUEST_ID,
    T_RESOURCE_ID,
    T_TEXT,
    T_UID,
    T_VALUE,
    T_VAVAILABILITY,
    T_VEN_ID,
    T_VTN_ID,
    _child,
    _collect,
    _dt,
    _dt_prop,
    _dur,
    _dur_prop,
    _e,
    _ei_response,
    _El,
    _int,
    _item_base,
    _Missing,
    _o,
    _properties,
    _qualified_event_id,
    _simple,
    _Spec,
    _text,
    _x,
)


def _event_response(el: _El) -> m.EventResponse:
    resp = _ei_response(el)
    event_id, mod = _qualified_event_id(_child(el, T_QUALIFIED_EVENT_ID))
    return m.EventResponse(response=resp, event_id=event_id, modification_number=mod,
                           opt_type=_child(el, T_OPT_TYPE).text or "")



T_OADR_EVENT = _o("oadrEvent")
T_EI_EVENT = _e("eiEvent")
T_RESPONSE_REQUIRED = _o("oadrResponseRequired")
T_EVENT_DESCRIPTOR = _e("eventDescriptor")
T_ACTIVE_PERIOD = _e("eiActivePeriod")
T_EVENT_SIGNALS = _e("eiEventSignals")
T_EVENT_SIGNAL = _e("eiEventSignal")
T_SIGNAL_PAYLOAD = _e("signalPayload")
T_CURRENT_VALUE = _e("currentValue")
T_TOLERANCE = _x("tolerance")
T_TOLERATE = _x("tolerate")
T_START_AFTER = _x("startafter")
T_NOTIFICATION = _e("x-eiNotification")
T_RAMP_UP = _e("x-eiRampUp")
T_RECOVERY = _e("x-eiRecovery")
T_MARKET_CONTEXT_WRAP = _e("eiMarketContext")
T_SIGNAL_NAME = _e("signalName")
T_SIGNAL_TYPE = _e("signalType")
T_SIGNAL_ID = _e("signalID")

_TARGET_FIELDS = {
    T_GROUP_ID: "group_ids", T_RESOURCE_ID: "resource_ids", T_VEN_ID: "ven_ids",
    T_PARTY_ID: "party_ids",
}
_DESCRIPTOR_SPEC: _Spec = {
    T_EVENT_ID: ("event_id", _text, False),
    T_MODIFICATION_NUMBER: ("modification_number", _int, False),
    _e("modificationDateTime"): ("modification_date_time", _dt, False),
    _e("modificationReason"): ("modification_reason", _text, False),
    _e("priority"): ("priority", _int, False),
    T_CREATED_DT: ("created_date_time", _dt, False),
    _e("eventStatus"): ("event_status", _text, False),
    _e("testEvent"): ("test_event", _text, False),
    _e("vtnComment"): ("vtn_comment", _text, False),
}


def _target(el: _El) -> m.EventTarget:
    t = m.EventTarget()
    for c in el:
        name = _TARGET_FIELDS.get(c.tag)
        if name is not None:
            getattr(t, name).append(c.text or "")
    return t


def _payload_value(el: _El) -> float:
    """signalPayload / currentValue -> the payloadFloat value."""
    return float(_child(_child(el, T_PAYLOAD_FLOAT), T_VALUE).text or "")


def _signal_interval(el: _El) -> m.SignalInterval:
    duration = timedelta(0)
    uid = "0"
    value = None
    for c in el:
        if c.tag == T_DURATION:
            duration = _dur_prop(c)
        elif c.tag == T_UID:
            uid = _child(c, T_TEXT).text or ""
        elif c.tag == T_SIGNAL_PAYLOAD:
            value = _payload_value(c)
    if value is None:
        raise _Missing("interval lacks signalPayload")
    return m.SignalInterval(duration=duration, value=value, uid=uid)


def _signal(el: _El) -> m.EventSignal:
    kw: dict[str, Any] = {"intervals": []}
    for c in el:
        tag = c.tag
        if tag == T_INTERVALS:
            kw["intervals"] = [_signal_interval(i) for i in c if i.tag == T_INTERVAL]
        elif tag == T_EI_TARGET:
            kw["target"] = _target(c)
        elif tag == T_SIGNAL_NAME:
            kw["signal_name"] = c.text or ""
        elif tag == T_SIGNAL_TYPE:
            kw["signal_type"] = c.text or ""
        elif tag == T_SIGNAL_ID:
            kw["signal_id"] = c.text or ""
        elif tag == T_CURRENT_VALUE:
            kw["current_value"] = _payload_value(c)
        else:  # the only other child is an emix:itemBase substitute
            kw["item_base"] = _item_base(c)
    return m.EventSignal(**kw)


def _active_period(el: _El, kw: dict[str, Any]) -> None:
    props = _child(el, T_PROPERTIES)
    for c in props:
        tag = c.tag
        if tag == T_DTSTART:
            kw["dtstart"] = _dt_prop(c)
        elif tag == T_DURATION:
            kw["duration"] = _dur_prop(c)
        elif tag == T_TOLERANCE:
            for after in _child(c, T_TOLERATE):
                if after.tag == T_START_AFTER:
                    kw["start_after"] = _dur(after)
        elif tag == T_NOTIFICATION:
            kw["notification"] = _dur_prop(c)
        elif tag == T_RAMP_UP:
            kw["ramp_up"] = _dur_prop(c)
        elif tag == T_RECOVERY:
            kw["recovery"] = _dur_prop(c)


def _event(el: _El) -> m.Event:
    kw: dict[str, Any] = {}
    for c in _child(el, T_EI_EVENT):
        tag = c.tag
        if tag == T_EVENT_DESCRIPTOR:
            kw.update(_collect(c, _DESCRIPTOR_SPEC))
            market = _child(_child(c, T_MARKET_CONTEXT_WRAP), T_MARKET_CONTEXT)
            kw["market_context"] = market.text or ""
        elif tag == T_ACTIVE_PERIOD:
            _active_period(c, kw)
        elif tag == T_EVENT_SIGNALS:
            kw["signals"] = [_signal(s) for s in c if s.tag == T_EVENT_SIGNAL]
        elif tag == T_EI_TARGET:
            kw["target"] = _target(c)
    kw["response_required"] = (_child(el, T_RESPONSE_REQUIRED).text or "").strip()
    return m.Event(**kw)


_distribute_event = _simple(m.DistributeEvent, {
    T_EI_RESPONSE: _RESP, T_REQUEST_ID: _RID, T_VTN_ID: ("vtn_id", _text, False),
    T_OADR_EVENT: ("events", _event, True),
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
