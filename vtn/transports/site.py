"""The VTN's listening socket: the OpenADR hot path (lean_http) in front of the aiohttp
application, which serves everything else (API, health, unusual HTTP); the connection cap
and the header deadline apply to both."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiohttp import web

from vtn.app import Vtn
from vtn.security.checks import warn_at_startup
from vtn.transports import errlog
from vtn.transports.http import build_app
from vtn.transports.lean_http import LeanServer


class HttpSite:
    def __init__(
        self, vtn: Vtn, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None,
        reuse_port: bool = False, manage_lifecycle: bool = True, **runner_options: Any,
    ) -> None:
        self.vtn, self.host, self.port = vtn, host, port
        errlog.install()  # malformed requests: one line each, rate limited
        self.ssl_context, self.reuse_port = ssl_context, reuse_port
        self.runner = web.AppRunner(build_app(vtn, manage_lifecycle), **runner_options)
        self.lean: LeanServer | None = None
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        warn_at_startup(self.vtn.config)
        await self.runner.setup()
        aiohttp_server = self.runner.server
        assert aiohttp_server is not None
        # always in front: with fast_path = false it hands every connection to aiohttp at
        # once and only keeps the header deadline and the connection cap
        self.lean = LeanServer(self.vtn, aiohttp_server)
        factory: Any = self.lean
        self.server = await asyncio.get_running_loop().create_server(
            factory, self.host, self.port, ssl=self.ssl_context,
            reuse_port=self.reuse_port or None, backlog=1024,
        )

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish, then stop the VTN."""
        if self.server is not None:
            self.server.close()
        if self.lean is not None:
            await self.lean.shutdown()
        await self.runner.cleanup()
