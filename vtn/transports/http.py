"""OpenADR 2.0b simple HTTP (pull) transport on aiohttp: moves bytes, nothing else."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from vtn.app import Vtn
from vtn.security import tls
from vtn.transports.ops_http import mount_ops

if TYPE_CHECKING:
    from registry.api.ven_actions import VenActions

log = logging.getLogger(__name__)

XML_TYPES = {"application/xml", "text/xml"}
VTN_KEY = web.AppKey("vtn", Vtn)
PROXIES_KEY = web.AppKey("trusted_proxies", tls.TrustedProxies)


def problem(status: int, title: str, detail: str) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/problem+json"
    )


def closing(response: web.Response) -> web.Response:
    """The rest of an unread body must not be parsed as the next request: close."""
    response.force_close()
    return response


def client_fingerprint(request: web.Request) -> str | None:
    """Fingerprint of the client certificate: from the TLS connection, or from the
    configured header when the peer is a trusted TLS-terminating proxy."""
    transport = request.transport
    if transport is not None:
        der = tls.peer_der(transport.get_extra_info("ssl_object"))
        if der is not None:
            return tls.fingerprint_of(der)
    header = request.app[VTN_KEY].config.tls.client_cert_header
    value = request.headers.get(header) if header else None
    return tls.proxied_fingerprint(request.remote, value, request.app[PROXIES_KEY])


async def openadr(request: web.Request) -> web.StreamResponse:
    vtn = request.app[VTN_KEY]
    if request.content_type not in XML_TYPES:
        return problem(415, "unsupported media type", "OpenADR payloads are application/xml")
    limit = vtn.config.http.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return closing(problem(413, "payload too large", f"limit is {limit} bytes"))
    try:
        if request.content.is_eof():  # the whole body is here (small bodies): no wait
            body = await request.read()
        else:
            async with asyncio.timeout(vtn.config.http.body_timeout_s):
                body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return closing(problem(413, "payload too large", f"limit is {limit} bytes"))
    except TimeoutError:
        return closing(problem(408, "request timeout", "the request body arrived too slowly"))
    fingerprint = client_fingerprint(request)
    reply = await vtn.engine.handle(request.match_info["service"], body, fingerprint)
    charset = "utf-8" if reply.content_type == "application/problem+json" else None
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type,
                        charset=charset)  # as the fast path (and problem() above) say it


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "vtn_id": request.app[VTN_KEY].config.vtn_id})


def ven_actions(vtn: Vtn) -> VenActions:
    """The operator's VEN actions for the API: the OpenADR side's admin functions, their
    refusals (OadrError) as ActionRefused (409). Imported here, as the API is optional."""
    from registry.api.ven_actions import ActionRefused, VenActions
    from vtn.services import admin
    from vtn.services.base import OadrError

    def refusing(action: Callable[[Any, str], Awaitable[None]]
                 ) -> Callable[[str], Awaitable[None]]:
        async def run(ven_id: str) -> None:
            try:
                await action(vtn.ctx, ven_id)
            except OadrError as exc:
                raise ActionRefused(exc.description) from exc

        return run

    return VenActions(reregister=refusing(admin.request_reregistration),
                      cancel=refusing(admin.cancel_registration))


def build_app(vtn: Vtn, manage_lifecycle: bool = True) -> web.Application:
    app = web.Application(client_max_size=vtn.config.http.max_body_bytes)
    app[VTN_KEY] = vtn
    app[PROXIES_KEY] = tls.TrustedProxies(vtn.config.tls.trusted_proxies)
    prefix = vtn.config.http.path_prefix.rstrip("/")
    app.router.add_post(prefix + "/OpenADR2/Simple/2.0b/{service}", openadr)
    app.router.add_get("/health", health)
    mount_ops(app, vtn)  # /ready, /metrics
    if vtn.config.api.enabled:
        from registry.api import mount_api
        from registry.ui import mount_ui

        mount_api(app, vtn, ven_actions(vtn))
        if vtn.config.api.ui:
            mount_ui(app, vtn.config.api.ui_tile_url, vtn.config.api.ui_tile_attribution)
    if manage_lifecycle:

        async def lifecycle(app: web.Application):  # type: ignore[no-untyped-def]
            await vtn.start()
            yield
            await vtn.stop()

        app.cleanup_ctx.append(lifecycle)
    return app
