"""/api/flexcoop/devices: the FLEXCoop (D6.5) Eve ``devices`` resource over our registry.

``GET`` on the resource (Eve's where / sort / projection / max_results / page, answered
with ``_items``, ``_meta`` and ``_links``), ``GET`` and ``PATCH`` on items (lookup field
``device_id``; ``PATCH`` needs ``If-Match`` with the item's ``_etag``: 428 without, 412
when stale). ``where`` compiles onto the typed :class:`DiscoveryQuery`
(:mod:`registry.flexcoop.where`), so the store applies the caller's scope first and no
client JSON reaches a database. Errors are problem+json with Eve's ``_status`` and
``_error`` added (:func:`eve_errors`). Field mapping: docs/flexcoop-api.md.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from registry.api.common import (
    ApiError,
    from_validation,
    invalid,
    json_response,
    parse_query,
    principal_of,
    read_json,
    scope_of,
    store_of,
)
from registry.api.errors import Handler
from registry.api.openapi import Op
from registry.discovery import AVAILABILITY_FLAGS, DerPatch, DiscoveryQuery
from registry.flexcoop.mapping import device, etag_of, location_of, selected
from registry.flexcoop.models import Device, DeviceList, DevicePatch, EveQuery, PatchResult
from registry.flexcoop.where import WhereError, compile_projection, discovery
from registry.models import Der
from registry.port import Conflict

PATH = "/flexcoop/devices"
COUNT_KEY = web.AppKey("flexcoop.count_total", bool)  # [api] flexcoop_total
MAX_SKIP = 10_000  # page * max_results beyond this is a 400 (keyset pages are walked)
_YES = {"yes": True, "no": False}


def _where_error(exc: WhereError) -> ApiError:
    return invalid(exc.param, str(exc))


async def _page(request: web.Request, query: DiscoveryQuery, skip: int, count: bool
                ) -> tuple[list[Der], int | None, bool]:
    """The DERs of one Eve page (skip walks keyset pages), the total count (when
    ``count``) and whether more follow."""
    store, scope = store_of(request), scope_of(request)
    total: int | None = None
    cursor: str | None = None
    while skip > 0:
        first = count and total is None
        step = query.model_copy(update={"limit": min(1000, skip), "cursor": cursor,
                                        "total": first, "fields": None})
        page = await store.find_ders(step, scope)
        if first:
            total = page.total or 0
        skip -= len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return [], total, False
    first = count and total is None
    last = query.model_copy(update={"cursor": cursor, "total": first})
    page = await store.find_ders(last, scope)
    if first:
        total = page.total or 0
    return [h.der for h in page.items], total, page.next_cursor is not None


def _href(request: web.Request, **params: Any) -> str:
    query = dict(request.query)
    query.update({k: str(v) for k, v in params.items()})
    return str(request.rel_url.with_query(query)).lstrip("/")


async def list_devices(request: web.Request) -> web.Response:
    eq = parse_query(EveQuery, request)
    try:
        projection = compile_projection(eq.projection)
        query = discovery(eq.where, eq.sort, eq.max_results)
    except WhereError as exc:
        raise _where_error(exc) from exc
    skip = (eq.page - 1) * eq.max_results
    if skip > MAX_SKIP:
        raise invalid("page", f"page * max_results may not exceed {MAX_SKIP + eq.max_results}")
    count = request.app.get(COUNT_KEY, True)
    ders, total, more = (await _page(request, query, skip, count) if query is not None
                         else ([], 0 if count else None, False))
    fields = selected(projection)
    items = []
    for der in ders:
        doc = device(der, fields)
        doc["_links"] = {"self": {"title": "Device", "href": f"{PATH.lstrip('/')}/{der.device_id}"}}
        items.append(doc)
    links: dict[str, dict[str, str]] = {
        "parent": {"title": "home", "href": "/"},
        "self": {"title": "devices", "href": _href(request)},
    }
    if more:
        links["next"] = {"title": "next page", "href": _href(request, page=eq.page + 1)}
    if more and total is not None:
        last = max(1, -(-total // eq.max_results))
        links["last"] = {"title": "last page", "href": _href(request, page=last)}
    if eq.page > 1:
        links["prev"] = {"title": "previous page", "href": _href(request, page=eq.page - 1)}
    meta: dict[str, int] = {"page": eq.page, "max_results": eq.max_results}
    if total is not None:
        meta["total"] = total
    body = {"_items": items, "_links": links, "_meta": meta}
    return json_response(body)


async def _visible(request: web.Request) -> Der:
    der = await store_of(request).get_der(request.match_info["device_id"], scope_of(request))
    if der is None:
        raise ApiError(404, "not found", "no such device")
    return der


def _item(der: Der) -> dict[str, Any]:
    doc = device(der)
    doc["_links"] = {"self": {"title": "Device", "href": f"{PATH.lstrip('/')}/{der.device_id}"},
                     "parent": {"title": "home", "href": "/"}}
    return doc


async def get_device(request: web.Request) -> web.StreamResponse:
    der = await _visible(request)
    tag = etag_of(der)
    if _tag(request.headers.get("If-None-Match")) == tag:
        return web.Response(status=304, headers={"ETag": f'"{tag}"'})
    return json_response(_item(der), headers={"ETag": f'"{tag}"'})


def _tag(header: str | None) -> str | None:
    if header is None:
        return None
    return header.strip().removeprefix("W/").strip('"')


def _der_patch(patch: DevicePatch) -> DerPatch:
    changes: dict[str, Any] = {}
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        if value is None:
            raise invalid(name, "may not be null")
        if name in AVAILABILITY_FLAGS:
            changes[name] = _YES[value]
        elif name == "location":
            changes[name] = location_of(value.model_dump())
        else:
            changes[name] = value
    try:
        return DerPatch.model_validate(changes)
    except ValidationError as exc:
        raise from_validation(exc, "body") from exc


async def patch_device(request: web.Request) -> web.Response:
    principal = principal_of(request)
    if request.content_type not in ("application/json", "application/merge-patch+json"):
        raise ApiError(415, "unsupported media type", "send application/json")
    header = _tag(request.headers.get("If-Match"))
    if header is None:
        raise ApiError(428, "precondition required", "send If-Match with the item's _etag")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    try:
        patch = _der_patch(DevicePatch.model_validate(body))
    except ValidationError as exc:
        raise from_validation(exc, "body") from exc
    if principal.role == "prosumer":
        denied = sorted(set(patch.model_fields_set) - set(AVAILABILITY_FLAGS))
        if denied:
            raise ApiError(403, "forbidden", "a prosumer may change only its availabilities, "
                           f"not {', '.join(denied)}")
    der = await _visible(request)
    if header != "*" and header != etag_of(der):
        raise ApiError(412, "precondition failed", "the _etag is stale: GET the item again")
    try:
        der2 = await store_of(request).patch_der(
            der.device_id, patch, principal.scope, actor=principal.subject,
            if_version=der.version)
    except Conflict as exc:
        raise ApiError(412, "precondition failed", "the _etag is stale: GET the item again"
                       ) from exc
    if der2 is None:
        raise ApiError(404, "not found", "no such device")
    doc = device(der2)
    out = {"_status": "OK", **{k: doc[k] for k in ("_id", "_etag", "_updated", "_created",
                                                    "device_id")},
           "_links": _item(der2)["_links"]}
    return json_response(out, headers={"ETag": f'"{doc["_etag"]}"'})


@web.middleware
async def eve_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outside ``problems``: FLEXCoop errors also carry Eve's ``_status`` and ``_error``."""
    response = await handler(request)
    if (not request.path.startswith("/api" + PATH) or response.status < 400
            or not isinstance(response, web.Response) or response.text is None):
        return response
    try:
        problem = json.loads(response.text)
    except ValueError:
        return response
    message = problem.get("detail") or problem.get("title", "")
    problem.update({"_status": "ERR", "_error": {"code": response.status, "message": message}})
    response.text = json.dumps(problem, separators=(",", ":"))
    return response


def operations() -> list[Op]:
    dev_id = {"device_id": "the device's device_id (FLEXCoop lookup field)"}
    return [
        Op("GET", PATH, list_devices, "FLEXCoop: find devices (Eve)", query=EveQuery,
           response=DeviceList,
           description="Eve resource GET over the DERs the caller may see. where: MongoDB-"
           "style JSON with equality, $in, $nin, $ne, $gt/$gte/$lt/$lte, $and, $or (one "
           "field), $exists, $regex (literal substring of device_name), $near/$nearSphere "
           "($geometry Point, $maxDistance metres) and $geoWithin ($geometry rectangle, $box, "
           "$centerSphere). Anything else is a 400 naming the operator. docs/flexcoop-api.md"),
        Op("GET", PATH + "/{device_id}", get_device, "FLEXCoop: one device", path_params=dev_id,
           response=Device, errors=(404,), etag=True),
        Op("PATCH", PATH + "/{device_id}", patch_device, "FLEXCoop: change a device",
           path_params=dev_id, body=DevicePatch, response=PatchResult,
           errors=(403, 404, 412, 415, 428), etag=True, if_match_required=True,
           description="Eve PATCH: If-Match with the item's _etag is required (428 without, "
           "412 when stale). Prosumers may change only the availabilities."),
    ]
