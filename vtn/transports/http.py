"""OpenADR 2.0b simple HTTP (pull) transport on aiohttp: moves bytes, nothing else."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from vtn.app import Vtn

log = logging.getLogger(__name__)

XML_TYPES = {"application/xml", "text/xml"}
VTN_KEY = web.AppKey("vtn", Vtn)


def problem(status: int, title: str, detail: str) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/problem+json"
    )


async def openadr(request: web.Request) -> web.StreamResponse:
    vtn = request.app[VTN_KEY]
    if request.content_type not in XML_TYPES:
        return problem(415, "unsupported media type", "OpenADR payloads are application/xml")
    limit = vtn.config.http.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return problem(413, "payload too large", f"limit is {limit} bytes")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return problem(413, "payload too large", f"limit is {limit} bytes")
    reply = await vtn.engine.handle(request.match_info["service"], body)
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "vtn_id": request.app[VTN_KEY].config.vtn_id})


def build_app(vtn: Vtn, manage_lifecycle: bool = True) -> web.Application:
    app = web.Application(client_max_size=vtn.config.http.max_body_bytes)
    app[VTN_KEY] = vtn
    prefix = vtn.config.http.path_prefix.rstrip("/")
    app.router.add_post(prefix + "/OpenADR2/Simple/2.0b/{service}", openadr)
    app.router.add_get("/health", health)
    if manage_lifecycle:

        async def lifecycle(app: web.Application):  # type: ignore[no-untyped-def]
            await vtn.start()
            yield
            await vtn.stop()

        app.cleanup_ctx.append(lifecycle)
    return app
