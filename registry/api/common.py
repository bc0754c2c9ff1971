"""What every /api/v1 resource module shares: the request's store and principal (hence
its scope), the VTN's clock, query-string parsing, bounded JSON bodies, JSON responses,
DER items, and the problem+json errors.

Resource modules import from here (and from :mod:`registry.api.models`), never from each
other nor from :mod:`registry.api` itself, which assembles them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from registry.api.auth import Principal
from registry.api.errors import ApiError, from_validation, invalid
from registry.discovery import Hit
from registry.limits import MAX_JSON_DEPTH, too_deep
from registry.port import Scope, Store

__all__ = [
    "BODY_KEY",
    "CLOCK_KEY",
    "JSON_TYPES",
    "PRINCIPAL",
    "STORE_KEY",
    "ApiError",
    "BodyLimits",
    "der_item",
    "from_validation",
    "invalid",
    "json_response",
    "now_of",
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
CLOCK_KEY = web.AppKey("api.clock", object)  # the VTN's clock: () -> aware datetime
M = TypeVar("M", bound=BaseModel)
JSON_TYPES = ("application/json", "application/merge-patch+json")


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """``http.max_body_bytes`` and ``http.body_timeout_s`` of the configuration."""

    max_bytes: int = 2 * 1024 * 1024
    timeout_s: float = 30.0


BODY_KEY = web.AppKey("api.body_limits", BodyLimits)


def store_of(request: web.Request) -> Store:
    return request.app[STORE_KEY]  # type: ignore[return-value]


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]  # type: ignore[no-any-return]


def scope_of(request: web.Request) -> Scope:
    """The caller's tenant scope: every store call gets it, filtering happens in the query."""
    return principal_of(request).scope


def now_of(request: web.Request) -> datetime:
    clock: Callable[[], datetime] | None = request.app.get(CLOCK_KEY)  # type: ignore[assignment]
    return clock() if clock is not None else datetime.now(UTC)


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: web.Request, max_bytes: int | None = None) -> Any:
    """The request's JSON body, read here with a size limit (``http.max_body_bytes`` or
    ``max_bytes``: 413, the connection closed) and a time limit (408); NaN, Infinity,
    out-of-range numbers, bad UTF-8 and nesting deeper than MAX_JSON_DEPTH are 400s
    (field ``body``), never a 500. The content type is the caller's to check."""
    limits = request.app.get(BODY_KEY) or BodyLimits()
    limit = max_bytes or limits.max_bytes
    too_large = ApiError(413, "payload too large", f"limit is {limit} bytes", close=True)
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    buf = bytearray()
    try:
        async with asyncio.timeout(limits.timeout_s):
            async for chunk in request.content.iter_chunked(1 << 16):
                buf += chunk
                if len(buf) > limit:
                    raise too_large
    except TimeoutError:
        raise ApiError(408, "request timeout", "the request body arrived too slowly",
                       close=True) from None
    try:
        body = json.loads(buf, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise invalid("body", "not JSON, or nested too deep") from None
    except ValueError as exc:  # also bad UTF-8 and integers over 4300 digits
        raise invalid("body", f"not JSON: {str(exc)[:200]}") from None
    if too_deep(body):
        raise invalid("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return body


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


def der_item(hit: Hit, fields: list[str] | None) -> dict[str, Any]:
    """One DER of a discovery page, projected to ``fields``, with its distance if geo."""
    doc = hit.der.model_dump(mode="json", include=set(fields) if fields else None)
    if hit.distance_m is not None and (not fields or "distance_m" in fields):
        doc["distance_m"] = round(hit.distance_m, 3)
    return doc
