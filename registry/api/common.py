"""What every /api/v1 resource module shares: the request's store and principal (hence
its scope), query-string parsing, JSON responses, DER items, and the problem+json errors.

Resource modules import from here (and from :mod:`registry.api.models`), never from each
other nor from :mod:`registry.api` itself, which assembles them.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from registry.api.auth import Principal
from registry.api.errors import ApiError, from_validation, invalid
from registry.discovery import Hit
from registry.limits import MAX_JSON_DEPTH, too_deep
from registry.port import Scope, Store

__all__ = [
    "PRINCIPAL",
    "STORE_KEY",
    "ApiError",
    "der_item",
    "from_validation",
    "invalid",
    "json_response",
    "parse_query",
    "principal_of",
    "read_json",
    "scope_of",
    "store_of",
]

PRINCIPAL: Any = (
    web.RequestKey("api.principal", Principal) if hasattr(web, "RequestKey") else "api.principal"
)
STORE_KEY = web.AppKey("api.store", object)
M = TypeVar("M", bound=BaseModel)


def store_of(request: web.Request) -> Store:
    return request.app[STORE_KEY]  # type: ignore[return-value]


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]  # type: ignore[no-any-return]


def scope_of(request: web.Request) -> Scope:
    """The caller's tenant scope: every store call gets it, filtering happens in the query."""
    return principal_of(request).scope


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


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; 400 (field ``body``) if it is not JSON or nests deeper
    than MAX_JSON_DEPTH (the parser would hit the recursion limit first)."""
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError) as exc:
        raise invalid("body", "not JSON, or nested too deep") from exc
    if too_deep(body):
        raise invalid("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return body


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data, separators=(",", ":")),
        content_type="application/json", headers=headers,
    )


def der_item(hit: Hit, fields: list[str] | None) -> dict[str, Any]:
    """One DER of a discovery page, projected to ``fields``, with its distance if geo."""
    doc = hit.der.model_dump(mode="json", include=set(fields) if fields else None)
    if hit.distance_m is not None and (not fields or "distance_m" in fields):
        doc["distance_m"] = round(hit.distance_m, 3)
    return doc
