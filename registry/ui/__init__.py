"""The operator dashboard: static files served at /ui by the VTN itself (same port).

The page is plain ES modules over vendored, versioned libraries (Leaflet for the map,
Supercluster for clustering 100k points, uPlot for time series), shipped as package
data: no CDN, no Node build at install or run time. It holds no data of its own and
has no back door: every number comes from /api/v1 with the bearer token the operator
signs in with, so the API's scoping is the page's scoping. ``/`` redirects here.
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
PREFIX = "/ui"
# the page's own files change with the package version; vendored ones carry theirs
CACHE = {"Cache-Control": "no-cache"}
SECURITY = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: https: http:; "
    "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def mount_ui(app: web.Application, tile_url: str = "", tile_attribution: str = "") -> None:
    """Add /ui (index, config.json, static files) and the / redirect."""
    settings = json.dumps({"tile_url": tile_url, "tile_attribution": tile_attribution})
    index = (STATIC / "index.html").read_text(encoding="utf-8")

    async def root(_: web.Request) -> web.Response:
        raise web.HTTPFound(PREFIX + "/")

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=index, content_type="text/html", headers={**CACHE, **SECURITY})

    async def config(_: web.Request) -> web.Response:
        return web.Response(text=settings, content_type="application/json", headers=CACHE)

    app.router.add_get("/", root)
    app.router.add_get(PREFIX, root)
    app.router.add_get(PREFIX + "/", page)
    app.router.add_get(PREFIX + "/config.json", config)
    app.router.add_static(PREFIX + "/static", STATIC, append_version=False)
