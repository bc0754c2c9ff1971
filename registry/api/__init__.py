"""The discovery and management side API (/api/v1), mounted next to the OpenADR routes.

It runs as an aiohttp sub-application so its middlewares (bearer auth, problem+json)
never touch the OpenADR endpoints. This module assembles the route table from one module
per resource (``ders``, ``vens``, ``events``, ``event_response``, ``log``, ``stats``,
``views``, ``reports``, ``flexcoop``, ``group_dispatch``, ``overview``, ``ven_actions``);
they share :mod:`registry.api.common` and never import this module.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from registry.api import (
    ders,
    event_response,
    events,
    flexcoop,
    group_dispatch,
    group_status,
    groups,
    log,
    overview,
    reports,
    stats,
    ven_actions,
    vens,
    views,
)
from registry.api.auth import AuthError, Verifier
from registry.api.common import BODY_KEY, CLOCK_KEY, PRINCIPAL, STORE_KEY, BodyLimits
from registry.api.errors import Handler, problems
from registry.api.log import STOP
from registry.api.models import Problem
from registry.api.openapi import SWAGGER_HTML, Op, build_openapi, swagger_static

if TYPE_CHECKING:
    from vtn.app import Vtn

PREFIX = "/api"
PUBLIC = {PREFIX + "/v1/openapi.json", PREFIX + "/docs"}
VERIFIER = web.AppKey("api.verifier", Verifier)
# the order of the OpenAPI document
RESOURCES = (ders, vens, events, event_response, log, stats, views, groups, group_status,
             reports, flexcoop, group_dispatch, overview, ven_actions)


def operations() -> list[Op]:
    """Every /api/v1 operation, each declared once in its resource module."""
    return [op for resource in RESOURCES for op in resource.operations()]


@web.middleware
async def bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC or request.path.startswith(PREFIX + "/docs/"):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("send Authorization: Bearer <token>")
    request[PRINCIPAL] = await request.app[VERIFIER].verify_request(token.strip())
    return await handler(request)


def mount_api(app: web.Application, vtn: Vtn,
              actions: ven_actions.VenActions | None = None) -> None:
    """Add /api/v1 (and /api/docs) to the VTN's aiohttp application; ``actions`` are the
    OpenADR side's VEN actions (re-register, cancel), handed in by the transport."""
    api = web.Application(middlewares=[flexcoop.eve_errors, problems, bearer])
    api[STORE_KEY] = vtn.store
    api[CLOCK_KEY] = vtn.ctx.clock
    api[BODY_KEY] = BodyLimits(vtn.config.http.max_body_bytes, vtn.config.http.body_timeout_s)
    api[VERIFIER] = Verifier(vtn.config)  # keys are read once, here (a JWKS URL: at startup)
    api.on_startup.append(api[VERIFIER].start)
    api[flexcoop.COUNT_KEY] = vtn.config.api.flexcoop_total
    api[STOP] = asyncio.Event()
    if actions is not None:
        api[ven_actions.ACTIONS] = actions
    ops = operations()
    for op in ops:
        api.router.add_route(op.method, op.path, op.handler)
    spec = json.dumps(build_openapi(ops, Problem, PREFIX))

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(text=spec, content_type="application/json")

    async def docs(_: web.Request) -> web.Response:
        html = SWAGGER_HTML.format(base=PREFIX + "/docs", spec=PREFIX + "/v1/openapi.json")
        return web.Response(text=html, content_type="text/html")

    async def stop_streams(_: Any) -> None:
        api[STOP].set()

    api.router.add_get("/v1/openapi.json", openapi)
    api.router.add_get("/docs", docs)
    api.router.add_static("/docs/static", swagger_static())
    api.on_shutdown.append(stop_streams)
    app.add_subapp(PREFIX, api)
