"""A real push VEN for tests: an aiohttp server on loopback that answers what the VTN
POSTs the way a 2.0b VEN does (in the response body), and records what it got."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from tests.conftest import free_port
from vtn.codec import decode, encode, validate
from vtn.codec import messages as m
from vtn.config import Config


def allow_loopback_push(config: Config, scan_s: float = 0.05) -> None:
    """[push] for tests: plain http to 127.0.0.1, quick scans and retries."""
    push = config.push
    push.allowed_schemes = ["http", "https"]
    push.allowed_cidrs = ["127.0.0.0/8"]
    push.scan_interval_s = scan_s
    push.backoff_initial_s = 0.1
    push.backoff_max_s = 0.4
    push.timeout_s = 5.0


def answer(msg: m.Message, ven_id: str, opt: str = "optIn") -> m.Message:
    """The synchronous reply of a VEN to a pushed message."""
    if isinstance(msg, m.DistributeEvent):
        return m.CreatedEvent(m.EiResponse(m.OK, "OK", ""), ven_id=ven_id, event_responses=[
            m.EventResponse(m.EiResponse(m.OK, "OK", msg.request_id), e.event_id,
                            e.modification_number, opt) for e in msg.events])
    if isinstance(msg, m.RegisterReport):
        return m.RegisteredReport(m.EiResponse(m.OK, "OK", msg.request_id), ven_id=ven_id)
    return m.Response(m.EiResponse(m.OK, "OK", getattr(msg, "request_id", "") or ""),
                      ven_id=ven_id)


@dataclass
class PushVen:
    """Push VENs behind one loopback socket, one path per VEN (/ven/NAME)."""

    port: int = field(default_factory=free_port)
    ven_ids: dict[str, str] = field(default_factory=dict)  # name -> venID (after register)
    received: dict[str, list[m.Message]] = field(default_factory=dict)
    refuse: bool = False  # answer 503 (the VEN is there but not ready)
    reply: Callable[[m.Message, str], m.Message | None] = answer
    runner: web.AppRunner | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    tls: ssl.SSLContext | None = None  # https (the VEN's server certificate)
    peers: list[dict] = field(default_factory=list)  # type: ignore[type-arg]

    def url(self, name: str) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/ven/{name}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/ven/{name}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=self.tls).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        if self.refuse:
            return web.Response(status=503)
        body = await request.read()
        if request.transport is not None and self.tls is not None:
            self.peers.append(request.transport.get_extra_info("peercert") or {})
        validate(body)  # what the VTN pushes is valid 2.0b
        msg = decode(body)
        name = request.match_info["name"]
        self.received.setdefault(name, []).append(msg)
        self.arrived.set()
        out = self.reply(msg, self.ven_ids.get(name, ""))
        if out is None:
            return web.Response(status=200)
        return web.Response(body=encode(out), content_type="application/xml")

    def kinds(self, name: str) -> list[str]:
        return [m.ELEMENT_NAMES[type(x)] for x in self.received.get(name, [])]

    async def wait_for(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                self.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await self.arrived.wait()
