"""EiEvent and EiOpt decoders, including the events of an oadrDistributeEvent."""

from __future__ import annotations

from datetime import datetime, timedelta

from . import messages as m
from .decode_base import (
    _RESP,
    _RID,
    _VEN,
    T_AVAILABLE,
    T_COMPONENTS,
    T_CREATED_DT,
    T_EI_CREATED_EVENT,
    T_EI_REQUEST_EVENT,
    T_EI_RESPONSE,
    T_EI_TARGET,
    T_EVENT_RESPONSE,
    T_EVENT_RESPONSES,
    T_MARKET_CONTEXT,
    T_OPT_ID,
    T_OPT_REASON,
    T_OPT_TYPE,
    T_QUALIFIED_EVENT_ID,
    T_REPLY_LIMIT,
    T_REQUEST_ID,
    T_RESOURCE_ID,
    T_VAVAILABILITY,
    T_VEN_ID,
    T_VTN_ID,
    _child,
    _collect,
    _dt,
    _ei_response,
    _El,
    _int,
    _properties,
    _qualified_event_id,
    _simple,
    _Spec,
    _text,
)


def _event_response(el: _El) -> m.EventResponse:
    resp = _ei_response(el)
    event_id, mod = _qualified_event_id(_child(el, T_QUALIFIED_EVENT_ID))
    return m.EventResponse(response=resp, event_id=event_id, modification_number=mod,
                           opt_type=_child(el, T_OPT_TYPE).text or "")



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
