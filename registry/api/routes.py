"""aiohttp handlers of /api/v1. Each operation is declared once in :data:`OPERATIONS`.

Handlers get the caller's :class:`Principal` from the auth middleware and hand its scope
to every store call: tenant filtering happens inside the query, never after it.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from multidict import MultiDict
from pydantic import BaseModel, ValidationError

from registry.api.auth import Principal
from registry.api.errors import ApiError, from_validation, invalid
from registry.api.models import (
    DerList,
    DerPatch,
    DiscoveryQuery,
    EventList,
    LogQuery,
    Stats,
    VenDetail,
    VenList,
    VenOut,
)
from registry.api.openapi import Op
from registry.discovery import AVAILABILITY_FLAGS, CursorError, Hit
from registry.models import Der, Ven
from registry.port import Conflict, Store

PRINCIPAL: Any = (
    web.RequestKey("api.principal", Principal) if hasattr(web, "RequestKey") else "api.principal"
)
STORE_KEY = web.AppKey("api.store", object)
M = TypeVar("M", bound=BaseModel)


def store_of(request: web.Request) -> Store:
    return request.app[STORE_KEY]  # type: ignore[return-value]


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]  # type: ignore[no-any-return]


def parse_query(model: type[M], request: web.Request, **override: Any) -> M:
    """Query string -> model; repeated keys become lists, unknown keys are rejected."""
    raw: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        raw[key] = values if len(values) > 1 else values[0]
    raw.update(override)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise from_validation(exc, "query") from exc


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data, separators=(",", ":")),
        content_type="application/json", headers=headers,
    )


def etag(der: Der) -> str:
    return f'"{der.version}"'


def _item(hit: Hit, fields: list[str] | None) -> dict[str, Any]:
    doc = hit.der.model_dump(mode="json", include=set(fields) if fields else None)
    if hit.distance_m is not None and (not fields or "distance_m" in fields):
        doc["distance_m"] = round(hit.distance_m, 3)
    return doc


# --- DERs ------------------------------------------------------------------------------


async def list_ders(request: web.Request) -> web.Response:
    query = parse_query(DiscoveryQuery, request)
    try:
        page = await store_of(request).find_ders(query, principal_of(request).scope)
    except CursorError as exc:
        raise invalid("cursor", str(exc)) from exc
    body: dict[str, Any] = {
        "items": [_item(h, query.fields) for h in page.items],
        "next_cursor": page.next_cursor,
    }
    if page.total is not None:
        body["total"] = page.total
    headers = {}
    if page.next_cursor:
        q = MultiDict(request.query)
        q["cursor"] = page.next_cursor
        headers["Link"] = f'<{request.url.with_query(q)}>; rel="next"'
    return json_response(body, headers=headers)


async def get_der(request: web.Request) -> web.Response:
    der = await store_of(request).get_der(
        request.match_info["device_id"], principal_of(request).scope
    )
    if der is None:
        raise ApiError(404, "not found", "no such DER")
    return json_response(der.model_dump(mode="json"), headers={"ETag": etag(der)})


def _if_match(request: web.Request) -> int | None:
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    tag = header.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise ApiError(412, "precondition failed", "If-Match is not an ETag of this DER")
    return int(tag)


async def patch_der(request: web.Request) -> web.Response:
    principal = principal_of(request)
    if request.content_type not in ("application/json", "application/merge-patch+json"):
        raise ApiError(415, "unsupported media type", "send application/json")
    try:
        body = await request.json()
    except ValueError as exc:
        raise invalid("body", "not JSON") from exc
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    try:
        patch = DerPatch.model_validate(body)
    except ValidationError as exc:
        raise from_validation(exc, "body") from exc
    for name in patch.model_fields_set:
        if getattr(patch, name) is None and name != "location":
            raise invalid(name, "may not be null")
    if principal.role == "prosumer":
        denied = sorted(set(patch.model_fields_set) - set(AVAILABILITY_FLAGS))
        if denied:
            raise ApiError(
                403, "forbidden", f"a prosumer may change only its availability flags, "
                f"not {', '.join(denied)}",
            )
    try:
        der = await store_of(request).patch_der(
            request.match_info["device_id"], patch, principal.scope,
            actor=principal.subject, if_version=_if_match(request),
        )
    except Conflict as exc:
        raise ApiError(412, "precondition failed", str(exc)) from exc
    if der is None:
        raise ApiError(404, "not found", "no such DER")
    return json_response(der.model_dump(mode="json"), headers={"ETag": etag(der)})


# --- VENs, events, stats ---------------------------------------------------------------


def _ven(ven: Ven) -> dict[str, Any]:
    fields = set(VenOut.model_fields)
    return VenOut.model_validate(ven.model_dump(include=fields)).model_dump(mode="json")


async def list_vens(request: web.Request) -> web.Response:
    vens = await store_of(request).list_vens(principal_of(request).scope)
    return json_response({"items": [_ven(v) for v in vens]})


async def get_ven(request: web.Request) -> web.Response:
    scope = principal_of(request).scope
    store = store_of(request)
    ven = await store.find_ven(request.match_info["ven_id"], scope)
    if ven is None:
        raise ApiError(404, "not found", "no such VEN")
    page = await store.find_ders(DiscoveryQuery(ven_id=[ven.ven_id], limit=1000), scope)
    body = _ven(ven)
    body["ders"] = [h.der.model_dump(mode="json") for h in page.items]
    return json_response(body)


async def list_events(request: web.Request) -> web.Response:
    query = parse_query(LogQuery, request)
    entries = await store_of(request).find_log(query, principal_of(request).scope)
    last = entries[-1].seq or query.after if entries else query.after
    headers = {}
    if len(entries) == query.limit:
        q = MultiDict(request.query)
        q["after"] = str(last)
        headers["Link"] = f'<{request.url.with_query(q)}>; rel="next"'
    return json_response(
        {"items": [e.model_dump(mode="json") for e in entries], "last_seq": last},
        headers=headers,
    )


async def stats(request: web.Request) -> web.Response:
    s = await store_of(request).der_stats(principal_of(request).scope)
    return json_response(
        {"total": s.total, "by_class": s.by_class, "by_type": s.by_type,
         "by_liveness": s.by_liveness}
    )


def operations() -> list[Op]:
    from registry.api.sse import stream_events
    from registry.api.views_routes import operations as view_operations

    der_id = {"device_id": "the DER's device_id"}
    return [
        Op("GET", "/v1/ders", list_ders, "Find DERs", query=DiscoveryQuery, response=DerList,
           description="Filter, geo search, sort, project and page through the DERs the "
           "caller may see. Follow the Link rel=next header (or next_cursor) for more."),
        Op("GET", "/v1/ders/{device_id}", get_der, "One DER", path_params=der_id, response=Der,
           errors=(404,), etag=True),
        Op("PATCH", "/v1/ders/{device_id}", patch_der, "Change a DER's user fields",
           path_params=der_id, body=DerPatch, response=Der, errors=(403, 404, 412, 415), etag=True,
           description="Availability flags, device_name and location. Send If-Match with "
           "the ETag from GET; a stale one gives 412. Prosumers may change only the "
           "availability flags. Logged as der.changed with the token subject as actor."),
        Op("GET", "/v1/vens", list_vens, "VENs", response=VenList),
        Op("GET", "/v1/vens/{ven_id}", get_ven, "One VEN with its DERs",
           path_params={"ven_id": "the venID"}, response=VenDetail, errors=(404,)),
        Op("GET", "/v1/events", list_events, "Event log", query=LogQuery, response=EventList),
        Op("GET", "/v1/events/stream", stream_events, "Event log as Server-Sent Events",
           query=LogQuery, sse=True,
           description="Each event has id = seq and event = kind; reconnect with "
           "Last-Event-ID to resume. Comments (': keep-alive') keep idle streams open."),
        Op("GET", "/v1/stats", stats, "DER counts by class, type and liveness", response=Stats),
        *view_operations(),
    ]

