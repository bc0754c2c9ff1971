"""EiEvent and EiOpt encoders, including the events of an oadrDistributeEvent."""

from __future__ import annotations

from . import messages as m
from .encode_base import (
    _ei_response,
    _opt,
    _properties,
    _t,
    fmt_datetime,
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
