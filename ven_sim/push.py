"""HTTP push VENs in the simulator: one listening socket for the whole fleet, one path
per VEN (``/ven/NAME``). A push VEN registers with oadrHttpPullModel false and
``PUSH_BASE/ven/NAME`` as its oadrTransportAddress, never polls, and answers what the
VTN POSTs in the response body (oadrCreatedEvent, oadrRegisteredReport, ...), as 2.0b
push VENs do. Further requests an answer leads to (opt schedules, a re-registration)
go to the VTN as usual.

Shaped so other transports only add a listener: the fleet builds one ``PushListener``
per transport that needs one (``FleetOptions.transport``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from ven_sim.osb import Osb
from ven_sim.session import REGISTERED, Env, Link
from ven_sim.stats import Stats
from vtn.codec import CodecError, decode, encode
from vtn.codec import messages as m

# the answer a VEN gives in the response body to a pushed message (the first it sends)
DIRECT_ANSWERS = (m.RegisteredReport, m.CreatedReport, m.CanceledReport, m.Response,
                  m.CanceledPartyRegistration, m.CreatedEvent)


class AnswerInBody:
    """A Link for one pushed message: the VEN's direct answer is kept for the response
    body (the VTN handles it there) instead of being POSTed; the rest goes out as usual."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.stats = link.stats
        self.answer: m.Message | None = None

    async def send(self, service: str, msg: m.Message) -> m.Message | None:
        if self.answer is None and isinstance(msg, DIRECT_ANSWERS):
            self.answer = msg
            self.stats.sent[m.ELEMENT_NAMES[type(msg)]] += 1
            return m.Response(m.EiResponse(m.OK, "OK", ""), ven_id=getattr(msg, "ven_id", None))
        return await self.link.send(service, msg)

    async def send_bad(self, kind: str, service: str, body: bytes) -> None:
        await self.link.send_bad(kind, service, body)


class PushListener:
    """The fleet's push endpoint: POST /ven/NAME is handled by that OSB."""

    def __init__(self, osbs: list[Osb], env: Env, stats: Stats, link_of: Callable[[int], Link],
                 host: str, port: int) -> None:
        self.index = {osb.name: i for i, osb in enumerate(osbs)}
        self.osbs, self.env, self.stats, self.link_of = osbs, env, stats, link_of
        self.host, self.port = host, port
        self.runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen; returns the port (useful when asked for port 0)."""
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/ven/{name}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, backlog=1024)
        await site.start()
        server = site._server  # the bound port when 0 was asked for
        if server is not None and getattr(server, "sockets", None):
            self.port = server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def handle(self, request: web.Request) -> web.Response:
        stats = self.stats
        i = self.index.get(request.match_info["name"])
        if i is None:
            stats.errors["push to an unknown VEN"] += 1
            return web.Response(status=404)
        try:
            msg = decode(await request.read())
        except CodecError:
            stats.errors["push decode"] += 1
            return web.Response(status=400)
        osb = self.osbs[i]
        if osb.state != REGISTERED:  # paused (flapping), stopped, or not registered yet
            return web.Response(status=503)
        stats.received[m.ELEMENT_NAMES[type(msg)]] += 1
        stats.pushed += 1
        link = AnswerInBody(self.link_of(i))
        try:
            await asyncio.shield(osb.handle(link, self.env, msg))
        except Exception:  # a simulator bug must not look like a VEN that is down
            stats.errors["simulator"] += 1
        if link.answer is None:
            return web.Response(status=200)
        return web.Response(body=encode(link.answer), content_type="application/xml")
