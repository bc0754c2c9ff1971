"""/api/v1/events: demand-response events (dispatch, list, read, modify, cancel), and
/api/v1/opts: the VENs' opt schedules. Every call is scoped by the caller's token.

The manager (:mod:`registry.event_manager`) does the work, the same functions the CLI
calls; this module maps HTTP onto it. Shapes and bounds are in
:mod:`registry.api.event_views`.

- service: anything; aggregator: dispatches only to its own VENs / DERs (the store
  resolves targets inside its scope), sees its events and those touching its DERs,
  changes only its own; prosumer: read-only, events touching its DERs, its deliveries.
- The ETag of an event is ``"<modification_number>"``; PATCH needs it in If-Match.
- Bodies may be up to ``EVENT_BODY_BYTES`` (or ``http.max_body_bytes`` if larger), so a
  target list of 100 000 ids fits.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDict
from pydantic import ValidationError

from registry import event_manager as manager
from registry.api.common import (
    BODY_KEY,
    JSON_TYPES,
    ApiError,
    BodyLimits,
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
from registry.api.event_views import (
    SERVER_OWNED,
    EventCreated,
    EventDetail,
    EventDetailQuery,
    EventIn,
    EventListQuery,
    EventOut,
    EventPage,
    EventPatch,
    OptList,
    OptsQuery,
    event_detail,
    event_out,
    stored_statuses,
)
from registry.api.models import FieldError
from registry.api.openapi import Op
from registry.events import DrEvent
from registry.port import EventQuery, Scope

EVENT_BODY_BYTES = 8 * 1024 * 1024
MAX_SCAN_PAGES = 20  # a status-filtered page reads at most this many store pages
TITLES = {400: "invalid request", 403: "forbidden", 404: "not found", 409: "conflict"}


def etag(event: DrEvent) -> str:
    return f'"{event.modification_number}"'


def _problem(exc: manager.EventError) -> ApiError:
    errors = [FieldError(field=exc.field, message=exc.detail)] if exc.field else []
    return ApiError(exc.status, TITLES.get(exc.status, "error"), exc.detail, errors)


def _writer(request: web.Request) -> Any:
    principal = principal_of(request)
    if principal.role == "prosumer":
        raise ApiError(403, "forbidden", "prosumers have read-only access to events")
    return principal


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type not in JSON_TYPES:
        raise ApiError(415, "unsupported media type", "send application/json")
    limits = request.app.get(BODY_KEY) or BodyLimits()
    body = await read_json(request, max(EVENT_BODY_BYTES, limits.max_bytes))
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    for name in SERVER_OWNED:
        if name in body:
            raise invalid(name, "set by the server; leave it out")
    return body


async def create_event(request: web.Request) -> web.Response:
    principal = _writer(request)
    body = await _body(request)
    try:
        event = EventIn.model_validate(body).to_event()
    except ValidationError as exc:
        raise from_validation(exc, "body") from exc
    now = now_of(request)
    try:
        event, deliveries = await manager.create_event(
            store_of(request), event, principal.scope, actor=principal.subject, now=now)
    except manager.EventError as exc:
        raise _problem(exc) from exc
    doc = event_out(event, now)
    doc["summary"] = {"vens": len(deliveries),
                      "ders": sum(len(d.device_ids) for d in deliveries)}
    location = f"{request.path.rstrip('/')}/{event.event_id}"
    return json_response(doc, status=201, headers={"Location": location, "ETag": etag(event)})


async def list_events(request: web.Request) -> web.Response:
    q = parse_query(EventListQuery, request)
    scope = scope_of(request)
    if q.aggregator_id is not None and not scope.is_service:
        raise ApiError(403, "forbidden", "only a service token filters by aggregator_id")
    store, now = store_of(request), now_of(request)
    wanted = set(q.status or ())
    query = EventQuery(
        status=stored_statuses(q.status), ven_id=q.ven_id, device_id=q.device_id,
        starts_after=q.from_, starts_before=q.to, aggregator_id=q.aggregator_id,
        program=q.program, limit=q.limit, after_event_id=q.cursor,
    )
    items: list[dict[str, Any]] = []
    next_cursor: str | None = None
    for _ in range(MAX_SCAN_PAGES):
        page = await store.list_events(query, scope)
        exhausted = len(page) < query.limit
        for i, event in enumerate(page):
            if not wanted or event.status_at(now) in wanted:
                items.append(event_out(event, now))
            if len(items) == q.limit:
                more = i < len(page) - 1 or not exhausted
                next_cursor = event.event_id if more else None
                break
        else:
            if exhausted:
                next_cursor = None
                break
            next_cursor = query.after_event_id = page[-1].event_id
            continue  # a status filter skipped some: read on
        break
    headers = {}
    if next_cursor:
        params = MultiDict(request.query)
        params["cursor"] = next_cursor
        headers["Link"] = f'<{request.url.with_query(params)}>; rel="next"'
    return json_response({"items": items, "next_cursor": next_cursor}, headers=headers)


async def _visible(request: web.Request) -> DrEvent:
    event = await store_of(request).get_event(request.match_info["event_id"],
                                              scope_of(request))
    if event is None:
        raise ApiError(404, "not found", "no such event")
    return event


async def get_event(request: web.Request) -> web.Response:
    q = parse_query(EventDetailQuery, request)
    event = await _visible(request)
    deliveries = await store_of(request).deliveries_of_event(event.event_id,
                                                              scope_of(request))
    doc = event_detail(event, deliveries, now_of(request), q.deliveries)
    return json_response(doc, headers={"ETag": etag(event)})


def _if_match(request: web.Request) -> int | None:
    """The modification number If-Match names; None for ``*`` (any); 428 without it."""
    header = request.headers.get("If-Match")
    if header is None or not header.strip():
        raise ApiError(428, "precondition required",
                       "send If-Match with the event's ETag (from GET), or * for any")
    if header.strip() == "*":
        return None
    tag = header.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 12:
        raise ApiError(412, "precondition failed", "If-Match is not an ETag of this event")
    return int(tag)


def _owner_check(event: DrEvent, scope: Scope) -> None:
    if not scope.is_service and event.aggregator_id != scope.aggregator_id:
        raise ApiError(403, "forbidden", "only the tenant that created an event may change it")


async def patch_event(request: web.Request) -> web.Response:
    principal = _writer(request)
    tag = _if_match(request)
    body = await _body(request)
    if "event_id" in body:
        raise invalid("event_id", "cannot be changed")
    try:
        changes = EventPatch.model_validate(body).changes()
    except ValidationError as exc:
        raise from_validation(exc, "body") from exc
    if not changes:
        raise invalid("body", "nothing to change")
    current = await _visible(request)
    _owner_check(current, principal.scope)
    if tag is not None and tag != current.modification_number:
        raise ApiError(412, "precondition failed",
                       f"the event is at modification {current.modification_number}")
    if "duration_s" in changes and "signals" not in changes:
        for i, sig in enumerate(current.signals):
            if abs(sig.total_s - (changes["duration_s"] or 0)) > 1e-6:
                raise invalid("duration_s", f"signals[{i}] lasts {sig.total_s:g} s; send "
                              "signals whose intervals fill the new duration")
    store, now = store_of(request), now_of(request)
    try:
        event = await manager.modify_event(
            store, current.event_id, changes, principal.scope, actor=principal.subject,
            now=now, if_modification=current.modification_number)
    except ValidationError as exc:
        raise from_validation(exc, "body") from exc
    except manager.EventConflict as exc:
        again = await store.get_event(current.event_id, principal.scope)
        if tag is not None and again is not None and again.modification_number != tag:
            raise ApiError(412, "precondition failed", str(exc)) from exc
        raise _problem(exc) from exc
    except manager.EventError as exc:
        raise _problem(exc) from exc
    return json_response(event_out(event, now), headers={"ETag": etag(event)})


async def cancel_event(request: web.Request) -> web.Response:
    principal = _writer(request)
    current = await _visible(request)
    _owner_check(current, principal.scope)
    now = now_of(request)
    try:
        event = await manager.cancel_event(store_of(request), current.event_id,
                                           principal.scope, actor=principal.subject, now=now)
    except manager.EventError as exc:
        raise _problem(exc) from exc
    return json_response(event_out(event, now), headers={"ETag": etag(event)})


async def list_opts(request: web.Request) -> web.Response:
    q = parse_query(OptsQuery, request)
    store, scope = store_of(request), scope_of(request)
    if q.at is not None:
        items = await store.opts_covering(q.at, scope, q.opt_type)
        items = [o for o in items if q.ven_id is None or o.ven_id == q.ven_id]
    else:
        if q.ven_id is None:
            raise invalid("ven_id", "required without at")
        if await store.find_ven(q.ven_id, scope) is None:
            raise ApiError(404, "not found", "no such VEN")
        items = [o for o in await store.opts_of_ven(q.ven_id)
                 if q.opt_type is None or o.opt_type is q.opt_type]
    return json_response({"items": [o.model_dump(mode="json") for o in items]})


def operations() -> list[Op]:
    event_id = {"event_id": "the event's id"}
    body_errors = (403, 408, 409, 413, 415)
    return [
        Op("POST", "/v1/events", create_event, "Dispatch a DR event", body=EventIn,
           response=EventCreated, errors=body_errors, status=201, etag=True,
           description="Targets are resolved inside the caller's scope; an unknown or "
           "foreign VEN / DER / group is a 400 naming targets.ven_ids, targets.device_ids "
           "or targets, and nothing is written. A duplicate event_id is 409; prosumers "
           "get 403. Answers with Location, the ETag and summary {vens, ders}. Bodies "
           "up to 8 MiB (100 000 target ids fit)."),
        Op("GET", "/v1/events", list_events, "DR events", query=EventListQuery,
           response=EventPage, errors=(403,),
           description="Events in scope in event_id order, with status_now. Follow "
           "next_cursor (or the Link rel=next header); a page may be shorter than limit "
           "and still have a next_cursor when a status filter skips events."),
        Op("GET", "/v1/events/{event_id}", get_event, "One DR event with its deliveries",
           path_params=event_id, query=EventDetailQuery, response=EventDetail,
           errors=(404,), etag=True,
           description="The event, status_now, values_now, and the deliveries visible "
           "to the caller (a prosumer sees only its own) with each VEN's response "
           "(optIn, optOut, no response, not required, pending) and totals."),
        Op("PATCH", "/v1/events/{event_id}", patch_event, "Modify a DR event",
           path_params=event_id, body=EventPatch, response=EventOut,
           errors=(*body_errors, 404, 412, 428), etag=True, if_match_required=True,
           description="Changes the fields sent, bumps modification_number and "
           "redistributes to the VENs. If-Match (the ETag, or *) is required: missing "
           "428, stale 412. A completed or cancelled event is 409."),
        Op("POST", "/v1/events/{event_id}/cancel", cancel_event, "Cancel a DR event",
           path_params=event_id, response=EventOut, errors=(403, 404, 409), etag=True,
           description="Idempotent: cancelling a cancelled event answers it unchanged. "
           "A completed event is 409."),
        Op("GET", "/v1/opts", list_opts, "Opt schedules", query=OptsQuery, response=OptList,
           errors=(404,),
           description="With at=: the schedules in scope whose windows contain it "
           "(optionally one VEN's). Without: ven_id's schedules (404 outside the scope)."),
    ]
