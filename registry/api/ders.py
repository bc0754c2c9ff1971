"""/api/v1/ders: discovery (filter, geo, sort, project, page), one DER, and PATCH."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from multidict import MultiDict
from pydantic import ValidationError

from registry.api.common import (
    ApiError,
    der_item,
    from_validation,
    invalid,
    json_response,
    parse_query,
    principal_of,
    read_json,
    scope_of,
    store_of,
)
from registry.api.models import DerList, DerPatch, DiscoveryQuery
from registry.api.openapi import Op
from registry.discovery import AVAILABILITY_FLAGS, CursorError
from registry.flexcoop.mapping import location_of
from registry.models import Der
from registry.port import Conflict

ETAG = re.compile("[0-9]{1,18}")
GEOJSON = "location=geojson"  # Prefer: location=geojson -> locations as GeoJSON Points


def _geo(request: web.Request) -> bool:
    return GEOJSON in request.headers.get("Prefer", "").replace(" ", "").split(",")


def _doc(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    """Our {lat, lon} location as a GeoJSON Point when the client prefers it."""
    loc = doc.get("location")
    if isinstance(loc, dict) and _geo(request):
        doc["location"] = {"type": "Point", "coordinates": [loc["lon"], loc["lat"]]}
    return doc


def _prefer(request: web.Request) -> dict[str, str]:
    return {"Preference-Applied": GEOJSON} if _geo(request) else {}


def etag(der: Der) -> str:
    return f'"{der.version}"'


async def list_ders(request: web.Request) -> web.Response:
    query = parse_query(DiscoveryQuery, request)
    try:
        page = await store_of(request).find_ders(query, scope_of(request))
    except CursorError as exc:
        raise invalid("cursor", str(exc)) from exc
    body: dict[str, Any] = {
        "items": [_doc(request, der_item(h, query.fields)) for h in page.items],
        "next_cursor": page.next_cursor,
    }
    if page.total is not None:
        body["total"] = page.total
    headers = _prefer(request)
    if page.next_cursor:
        q = MultiDict(request.query)
        q["cursor"] = page.next_cursor
        headers["Link"] = f'<{request.url.with_query(q)}>; rel="next"'
    return json_response(body, headers=headers)


async def get_der(request: web.Request) -> web.Response:
    der = await store_of(request).get_der(request.match_info["device_id"], scope_of(request))
    if der is None:
        raise ApiError(404, "not found", "no such DER")
    return json_response(_doc(request, der.model_dump(mode="json")),
                         headers={"ETag": etag(der), **_prefer(request)})


def _if_match(request: web.Request) -> int | None:
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    tag = header.strip().removeprefix("W/").strip('"')
    if not ETAG.fullmatch(tag):  # our ETags: a version, a 64-bit integer
        raise ApiError(412, "precondition failed", "If-Match is not an ETag of this DER")
    return int(tag)


async def patch_der(request: web.Request) -> web.Response:
    principal = principal_of(request)
    if request.content_type not in ("application/json", "application/merge-patch+json"):
        raise ApiError(415, "unsupported media type", "send application/json")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    if isinstance(body.get("location"), dict):  # a GeoJSON Point is accepted too
        try:
            body["location"] = location_of(body["location"])
        except ValueError as exc:
            raise invalid("location", str(exc)) from exc
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
    return json_response(_doc(request, der.model_dump(mode="json")),
                         headers={"ETag": etag(der), **_prefer(request)})


def operations() -> list[Op]:
    der_id = {"device_id": "the DER's device_id"}
    return [
        Op("GET", "/v1/ders", list_ders, "Find DERs", query=DiscoveryQuery, response=DerList,
           description="Filter, geo search, sort, project and page through the DERs the "
           "caller may see. Follow the Link rel=next header (or next_cursor) for more. "
           "Send Prefer: location=geojson for locations as GeoJSON Points."),
        Op("GET", "/v1/ders/{device_id}", get_der, "One DER", path_params=der_id, response=Der,
           errors=(404,), etag=True),
        Op("PATCH", "/v1/ders/{device_id}", patch_der, "Change a DER's user fields",
           path_params=der_id, body=DerPatch, response=Der, errors=(403, 404, 412, 415), etag=True,
           description="Availability flags, device_name and location ({lat, lon} or a GeoJSON "
           "Point; Prefer: location=geojson answers with a Point). Send If-Match with "
           "the ETag from GET; a stale one gives 412. Prosumers may change only the "
           "availability flags. Logged as der.changed with the token subject as actor."),
    ]
