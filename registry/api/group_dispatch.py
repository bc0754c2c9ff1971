"""/api/v1/dispatches: group dispatch (issue #15). "Group G delivers X kW from T1 to T2"
becomes one DR event per member VEN (registry.dispatch_manager); the status endpoint
shows requested vs assigned vs opted-in vs measured per slot.

Scope: a service dispatches any aggregator's group (``<aggregator_id>/<group>``) and sees
every dispatch; an aggregator dispatches and sees only its own groups' dispatches; a
prosumer gets 403 on writes and sees none (404).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDict
from pydantic import ValidationError

from registry import dispatch_manager as manager
from registry.api.common import (
    JSON_TYPES,
    ApiError,
    from_validation,
    invalid,
    json_response,
    now_of,
    parse_query,
    principal_of,
    read_json,
    scope_of,
    store_of,
)
from registry.api.dispatch_views import (
    DispatchCreated,
    DispatchDetailQuery,
    DispatchIn,
    DispatchListQuery,
    DispatchOut,
    DispatchPage,
    DispatchStatusOut,
    dispatch_created,
    dispatch_out,
)
from registry.api.models import FieldError
from registry.api.openapi import Op
from registry.dispatch_status import DispatchNotFound, dispatch_status
from registry.port.dispatches import DispatchQuery

TITLES = {400: "invalid request", 403: "forbidden", 404: "not found", 409: "conflict"}
SERVER_OWNED = ("aggregator_id", "group_name", "rev", "redispatches", "created_by", "created_at",
                "modified_at", "cancelled_at", "closed", "status_now")


def _problem(exc: manager.EventError) -> ApiError:
    errors = [FieldError(field=exc.field, message=exc.detail)] if exc.field else []
    return ApiError(exc.status, TITLES.get(exc.status, "error"), exc.detail, errors)


def _writer(request: web.Request) -> Any:
    principal = principal_of(request)
    if principal.role == "prosumer":
        raise ApiError(403, "forbidden", "prosumers cannot dispatch groups")
    return principal


async def create_dispatch(request: web.Request) -> web.Response:
    principal = _writer(request)
    if request.content_type not in JSON_TYPES:
        raise ApiError(415, "unsupported media type", "send application/json")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    for name in SERVER_OWNED:
        if name in body:
            raise invalid(name, "set by the server; leave it out")
    try:
        dispatch = DispatchIn.model_validate(body).to_dispatch()
    except ValidationError as exc:
        raise from_validation(exc, "body") from exc
    now = now_of(request)
    try:
        dispatch, members = await manager.create_dispatch(
            store_of(request), dispatch, principal.scope, actor=principal.subject, now=now)
    except manager.EventError as exc:
        raise _problem(exc) from exc
    doc = dispatch_created(dispatch, members, now)
    location = f"{request.path.rstrip('/')}/{dispatch.dispatch_id}"
    return json_response(doc, status=201, headers={"Location": location})


async def list_dispatches(request: web.Request) -> web.Response:
    q = parse_query(DispatchListQuery, request)
    scope = scope_of(request)
    if q.aggregator_id is not None and not scope.is_service:
        raise ApiError(403, "forbidden", "only a service token filters by aggregator_id")
    page = await store_of(request).list_dispatches(DispatchQuery(
        group=q.group, aggregator_id=q.aggregator_id, open_only=bool(q.open),
        limit=q.limit + 1, after_dispatch_id=q.cursor), scope)
    now = now_of(request)
    more = len(page) > q.limit
    page = page[:q.limit]
    next_cursor = page[-1].dispatch_id if more else None
    headers = {}
    if next_cursor:
        params = MultiDict(request.query)
        params["cursor"] = next_cursor
        headers["Link"] = f'<{request.url.with_query(params)}>; rel="next"'
    return json_response({"items": [dispatch_out(d, now) for d in page],
                          "next_cursor": next_cursor}, headers=headers)


async def get_dispatch(request: web.Request) -> web.Response:
    d = await store_of(request).get_dispatch(request.match_info["dispatch_id"],
                                             scope_of(request))
    if d is None:
        raise ApiError(404, "not found", "no such dispatch")
    return json_response(dispatch_out(d, now_of(request)))


async def get_status(request: web.Request) -> web.Response:
    q = parse_query(DispatchDetailQuery, request)
    try:
        doc = await dispatch_status(store_of(request), request.match_info["dispatch_id"],
                                    scope_of(request), now_of(request), q.members)
    except DispatchNotFound:
        raise ApiError(404, "not found", "no such dispatch") from None
    return json_response(doc)


async def cancel_dispatch(request: web.Request) -> web.Response:
    principal = _writer(request)
    now = now_of(request)
    try:
        d = await manager.cancel_dispatch(store_of(request), request.match_info["dispatch_id"],
                                          principal.scope, actor=principal.subject, now=now)
    except manager.EventError as exc:
        raise _problem(exc) from exc
    return json_response(dispatch_out(d, now))


def operations() -> list[Op]:
    did = {"dispatch_id": "the dispatch's id"}
    return [
        Op("POST", "/v1/dispatches", create_dispatch, "Dispatch a DER group",
           body=DispatchIn, response=DispatchCreated, errors=(403, 404, 409, 413, 415),
           status=201,
           description="Splits the requested kW over the group's eligible members in "
           "proportion to their available capacity (never more than it) and queues one DR "
           "event per member VEN (LOAD_DISPATCH delta in kW; disconnect / connect: "
           "LOAD_CONTROL x-loadControlCapacity, see docs/der-group-dispatch.md). A group "
           "outside the caller's scope is 404; prosumers get 403."),
        Op("GET", "/v1/dispatches", list_dispatches, "Group dispatches",
           query=DispatchListQuery, response=DispatchPage, errors=(403,),
           description="In dispatch_id order; follow next_cursor (or Link rel=next)."),
        Op("GET", "/v1/dispatches/{dispatch_id}", get_dispatch, "One group dispatch",
           path_params=did, response=DispatchOut, errors=(404,)),
        Op("GET", "/v1/dispatches/{dispatch_id}/status", get_status,
           "Requested vs assigned vs opted-in vs measured, per slot", path_params=did,
           query=DispatchDetailQuery, response=DispatchStatusOut, errors=(404,),
           description="Per slot kW figures, totals by member state and answer, and the "
           "members (at most ?members=N, default 1000) with their state and share."),
        Op("POST", "/v1/dispatches/{dispatch_id}/cancel", cancel_dispatch,
           "Cancel a group dispatch", path_params=did, response=DispatchOut,
           errors=(403, 404, 409),
           description="Cancels its events (the VENs get a cancelled event). Idempotent; "
           "a completed dispatch is 409."),
    ]
