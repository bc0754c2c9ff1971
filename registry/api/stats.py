"""/api/v1/stats: DER counts by class, type and liveness in the caller's scope."""

from __future__ import annotations

from aiohttp import web

from registry.api.common import json_response, scope_of, store_of
from registry.api.models import Stats
from registry.api.openapi import Op


async def stats(request: web.Request) -> web.Response:
    s = await store_of(request).der_stats(scope_of(request))
    return json_response(
        {"total": s.total, "by_class": s.by_class, "by_type": s.by_type,
         "by_liveness": s.by_liveness}
    )


def operations() -> list[Op]:
    return [
        Op("GET", "/v1/stats", stats, "DER counts by class, type and liveness", response=Stats),
    ]
