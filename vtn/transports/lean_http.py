"""The OpenADR endpoints' hot path: llhttp (httptools) framing without aiohttp's request
objects, in one asyncio protocol in front of aiohttp on the same port.

A VEN polls the same endpoint every few seconds for years, so per-request overhead is
most of what a VTN spends. httptools (the llhttp bindings under uvicorn, the parser
aiohttp's own C parser is built on) does all the HTTP parsing; this protocol serves only
the plain case, a ``POST <prefix>/OpenADR2/Simple/2.0b/<Service> HTTP/1.1`` with one
Host, a Content-Length within the limit and few, unrepeated headers, and hands the body
to the engine. Anything else (other paths and methods, chunked or ``Expect`` bodies,
HTTP/1.0, many or long headers, a body over the limit, any parse error) goes, from the
start of that request, to aiohttp's own protocol on the same connection, which answers it
exactly as it always did (the API, /health, 413 with lingering, 400 for bad HTTP...).

Once aiohttp owns a connection this protocol stays in front of it as a tap: bytes and
flow control pass through, and a second parser only watches where requests start and
where their headers end, so both paths share one header deadline and one connection cap
(``[http] header_timeout_s``, ``max_connections``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httptools

from vtn.security import tls
from vtn.services.dispatch import Reply, problem
from vtn.transports.wire import BUSY_REPLY, message_start, response_bytes

if TYPE_CHECKING:
    from vtn.app import Vtn

log = logging.getLogger(__name__)

MAX_HEAD = 8190  # request line + header bytes we serve ourselves; more goes to aiohttp
MAX_HEADERS = 32  # header fields we serve ourselves; aiohttp applies its own limit (128)
MAX_QUEUED = 16  # pipelined requests parsed ahead of the one being served
IDLE_TIMEOUT_S = 75.0  # an idle keep-alive connection is closed after this
LINGER_S = 2.0  # after a closing error reply, read and discard this long (client sees it)
XML_TYPES = {b"application/xml", b"text/xml"}
_HANDOFF_HEADERS = {b"transfer-encoding", b"expect", b"upgrade"}
class HandOff(Exception):
    """Raised inside a parser callback: this request is not ours, stop parsing."""


class BadHead(Exception):
    """Raised inside a parser callback: llhttp accepts this head, aiohttp's parser (with
    its limits) refuses it, so it is bad HTTP like a parse error (see bad_http)."""


# what aiohttp's request parser refuses beyond llhttp (aiohttp/_http_parser.pyx)
AIOHTTP_MAX_LINE = 8190  # request line; header name + value
AIOHTTP_MAX_HEADERS = 128
SINGLETONS = frozenset({b"content-length", b"content-location", b"content-range",
                        b"content-type", b"etag", b"host", b"max-forwards", b"server",
                        b"transfer-encoding", b"user-agent"})


class Request:
    __slots__ = ("service", "headers", "body", "keep_alive")

    def __init__(self, service: str, headers: dict[bytes, bytes], body: bytes,
                 keep_alive: bool) -> None:
        self.service, self.headers, self.body, self.keep_alive = (
            service, headers, body, keep_alive)


class _Tap:
    """Watches a connection aiohttp owns: where requests start, where headers end."""

    def __init__(self, conn: LeanProtocol) -> None:
        self.conn = conn

    def on_message_begin(self) -> None:
        self.conn.head_started = True

    def on_headers_complete(self) -> None:
        self.conn.head_done()


class LeanProtocol(asyncio.Protocol):
    """One client connection (see the module docstring)."""

    def __init__(self, server: LeanServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser: Any = httptools.HttpRequestParser(self)
        self.raw = bytearray()  # bytes from the start of the first unfinished message on
        self.begun = self.completed = 0  # messages seen in raw
        self.queue: deque[Request] = deque()
        self.handoff = False  # the first unfinished message goes to aiohttp
        self.busy = False  # a request is being handled
        self.done_reading = False  # after Connection: close, later bytes are ignored
        self.closing = False
        self.write_paused = False
        self.aiohttp: Any = None  # aiohttp's protocol, once it owns the connection
        self.last_active = 0.0
        self.head_started = True  # the first request's head is awaited from the start
        self.in_body = False  # the current request's body is being read
        self.head_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None
        self._fingerprint: str | None | bool = False  # False: not looked up yet
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._seen: set[bytes] = set()  # header names past MAX_HEADERS (not kept)
        self._count = 0
        self._foreign = False  # served by aiohttp (decided when the head is complete)
        self._size = 0
        self._service = ""
        self._body: list[bytes] = []

    # --- asyncio callbacks ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.last_active = time.monotonic()
        server = self.server
        if len(server.connections) >= server.max_connections:
            server.refused += 1
            self.closing = True
            self.transport.write(BUSY_REPLY)  # type: ignore[union-attr]
            self.transport.close()  # type: ignore[union-attr]
            return
        server.connections.add(self)
        self.arm_head_timer()
        if not server.fast_path:
            self.hand_off()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self._cancel_timers()
        self.transport = None
        if self.aiohttp is not None:
            self.aiohttp.connection_lost(exc)

    def eof_received(self) -> bool | None:
        if self.aiohttp is not None:
            return self.aiohttp.eof_received()  # type: ignore[no-any-return]
        return None

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        if self.aiohttp is not None:
            self.aiohttp.data_received(data)
            self.tap(data)
            return
        if self.closing or self.done_reading:
            return  # lingering after a closing reply, or after Connection: close
        if self.handoff:  # waiting for earlier requests to be answered first
            self.raw += data
            return
        self.raw += data
        before = self.completed
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.handoff = True
        except httptools.HttpParserError as exc:
            # not ours (HandOff), or bad HTTP (llhttp's error, BadHead): aiohttp answers
            del exc
            self.bad_http(before)
        if self.begun == self.completed and not self.handoff:
            self.raw.clear()  # at a message boundary: nothing before it is needed
            self.begun = self.completed = 0
        if self.head_started:
            self.arm_head_timer()
        if self.in_body and self.body_timer is None and not self.handoff:
            self.body_timer = asyncio.get_running_loop().call_later(
                self.server.body_timeout, self.body_too_slow)
        if self.transport is not None and (
            len(self.queue) >= MAX_QUEUED or len(self.raw) > self.server.limit + MAX_HEAD
        ):
            self.transport.pause_reading()  # pipelining faster than we answer: push back
        self.pump()

    def bad_http(self, before: int) -> None:
        """A request aiohttp must answer (not ours, or bad HTTP, including data after
        Connection: close). The requests completed in this same read go along, unserved:
        aiohttp's parser, which loses the requests it completed in a read that ends in a
        parse error, then answers exactly as if it had had the connection all along."""
        for _ in range(self.completed - before):
            self.queue.pop()
        self.completed = before
        self.done_reading = False
        self.handoff = True

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.aiohttp is not None:
            self.aiohttp.pause_writing()
        elif self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.aiohttp is not None:
            self.aiohttp.resume_writing()
        elif self.transport is not None and not self.closing:
            self.transport.resume_reading()

    # --- httptools callbacks (the fast path's own parser) ---

    def on_message_begin(self) -> None:
        self.begun += 1
        self.head_started = True
        self._url, self._headers, self._size, self._body = b"", {}, 0, []
        self._count, self._foreign = 0, False
        if self._seen:
            self._seen = set()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._size += len(url)
        if len(self._url) > AIOHTTP_MAX_LINE:
            raise BadHead

    def on_header(self, name: bytes, value: bytes) -> None:
        self._size += len(name) + len(value) + 4
        self._count += 1
        if self._count > AIOHTTP_MAX_HEADERS or len(name) + len(value) > AIOHTTP_MAX_LINE:
            raise BadHead
        name = name.lower()
        if name in self._headers or name in self._seen:
            if name in SINGLETONS:
                raise BadHead
            self._foreign = True
        elif len(self._headers) < MAX_HEADERS:
            self._headers[name] = value
        else:
            self._seen.add(name)
            self._foreign = True
        if name in _HANDOFF_HEADERS:
            self._foreign = True

    def on_headers_complete(self) -> None:
        self.head_done()
        parser, server, headers = self.parser, self.server, self._headers
        url = self._url
        version = parser.get_http_version()
        if version == "1.1" and b"host" not in headers and b"host" not in self._seen:
            raise BadHead
        if (self._foreign or self._size > MAX_HEAD or parser.get_method() != b"POST"
                or version != "1.1" or not url.startswith(server.prefix)
                or not headers.get(b"host")):
            raise HandOff
        service = url[len(server.prefix):]
        length = headers.get(b"content-length", b"")
        ctype = headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
        if ctype not in XML_TYPES:
            raise HandOff  # aiohttp answers 415 before reading the body (and then lingers)
        if (not service.isalpha() or not service.isascii() or not length.isdigit()
                or len(length) > 12 or int(length) > server.limit):
            raise HandOff  # aiohttp answers 413 (with lingering) or reads an unsized body
        self._service = service.decode()
        self.in_body = True  # a body timer is armed if this read ends inside it

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.in_body = False
        if self.body_timer is not None:
            self._cancel_body_timer()
        self.completed += 1
        keep = self.parser.should_keep_alive()
        self.queue.append(Request(self._service, self._headers, b"".join(self._body), keep))
        self._body = []
        if not keep:
            self.done_reading = True  # nothing after Connection: close is answered

    # --- requests ---

    def pump(self) -> None:
        if self.busy or self.transport is None or self.closing:
            return
        if self.queue:
            self.busy = True
            asyncio.get_running_loop().create_task(self.serve(self.queue.popleft()))
        elif self.handoff:
            self.hand_off()

    async def serve(self, req: Request) -> None:
        try:  # (a content type other than XML went to aiohttp: 415)
            reply = await self.server.vtn.engine.handle(
                req.service, req.body, self.fingerprint(req.headers)
            )
        except Exception:  # the engine answers every error itself; this is a last resort
            log.exception("unexpected error on the OpenADR fast path")
            reply = problem(500, "internal error", "see the VTN log")
        finally:
            self.busy = False
        if self.transport is None:
            return  # the client went away; what was acknowledged is committed anyway
        keep = req.keep_alive and not self.server.stopping
        self.transport.write(response_bytes(reply, close=not keep))
        self.last_active = time.monotonic()
        if not keep:
            self.closing = True
            self.transport.close()
            return
        if (not self.transport.is_reading() and not self.write_paused
                and len(self.queue) < MAX_QUEUED):
            self.transport.resume_reading()
        self.pump()  # pipelined

    def head_done(self) -> None:
        self.head_started = False
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def arm_head_timer(self) -> None:
        if self.head_started and self.head_timer is None and self.transport is not None:
            self.head_timer = asyncio.get_running_loop().call_later(
                self.server.header_timeout, self.head_too_slow)

    def head_too_slow(self) -> None:
        self.head_timer = None
        if self.transport is None:
            return
        self.server.slow_heads += 1
        if self.aiohttp is None and not self.busy and not self.queue:
            self.close_after(problem(408, "request timeout",
                                     "the request headers arrived too slowly"))
        else:  # aiohttp (or an earlier request) may be writing: no reply of ours
            self.transport.close()

    def body_too_slow(self) -> None:
        self.body_timer = None
        reply = problem(408, "request timeout", "the request body arrived too slowly")
        self.close_after(reply)

    def close_after(self, reply: Reply) -> None:
        """Answer, stop reading requests, and close once the client had time to read it."""
        if self.transport is None:
            return
        self.closing = True
        self.raw.clear()
        self.transport.write(response_bytes(reply, close=True))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_S, self.transport.close)

    def hand_off(self) -> None:
        """Give this connection, from the first unanswered request on, to aiohttp."""
        transport = self.transport
        assert transport is not None
        data = bytes(self.raw[message_start(self.raw, self.completed):] if self.completed
                     else self.raw)
        self._cancel_body_timer()
        self.raw, self.queue = bytearray(), deque()
        self.parser = httptools.HttpRequestParser(_Tap(self))
        self.head_started = True
        handler = self.server.aiohttp_factory()
        self.aiohttp = handler
        handler.connection_made(transport)
        if self.write_paused:
            handler.pause_writing()
        if not transport.is_reading():
            transport.resume_reading()  # aiohttp does its own flow control from here
        if data:
            handler.data_received(data)
            self.tap(data)

    def tap(self, data: bytes) -> None:
        if self.parser is None:
            return
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            # aiohttp answers a bad request and closes; an upgraded stream is not HTTP
            self.parser = None
            self.head_done()
            return
        self.arm_head_timer()

    def fingerprint(self, headers: dict[bytes, bytes]) -> str | None:
        """Client certificate fingerprint: from this TLS connection (looked up once), or
        from the configured header when the peer is a trusted TLS-terminating proxy."""
        if self._fingerprint is False:
            assert self.transport is not None
            der = tls.peer_der(self.transport.get_extra_info("ssl_object"))
            self._fingerprint = tls.fingerprint_of(der) if der is not None else None
        if self._fingerprint is not None:
            return self._fingerprint  # type: ignore[return-value]
        header = self.server.cert_header
        value = headers.get(header) if header else None
        if value is None:
            return None
        assert self.transport is not None
        peer = self.transport.get_extra_info("peername")
        return tls.proxied_fingerprint(
            peer[0] if peer else None, value.decode("latin-1"), self.server.proxies
        )

    def _cancel_body_timer(self) -> None:
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_body_timer()
        self.head_done()


def descriptor_budget(reserve: int = 64) -> int:
    """Connections that fit in this process's descriptor limit, ``reserve`` kept back."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, ValueError, OSError):
        return 1024
    if soft == resource.RLIM_INFINITY:
        return 65536
    return max(16, soft - reserve)


class LeanServer:
    """Protocol factory and bookkeeping for the connections of one listening socket."""

    def __init__(self, vtn: Vtn, aiohttp_factory: Callable[[], asyncio.Protocol]) -> None:
        cfg = vtn.config
        self.vtn = vtn
        self.aiohttp_factory = aiohttp_factory
        self.fast_path = cfg.http.fast_path
        self.prefix = (cfg.http.path_prefix.rstrip("/") + "/OpenADR2/Simple/2.0b/").encode()
        self.limit = cfg.http.max_body_bytes
        self.body_timeout = cfg.http.body_timeout_s
        self.header_timeout = cfg.http.header_timeout_s
        self.max_connections = cfg.http.max_connections or descriptor_budget()
        header = cfg.tls.client_cert_header
        self.cert_header = header.lower().encode() if header else None
        self.proxies = tls.TrustedProxies(cfg.tls.trusted_proxies)
        self.connections: set[LeanProtocol] = set()
        self.refused = self.slow_heads = 0  # connections over the cap, heads too slow
        self.stopping = False
        self._idle_task: asyncio.Task[None] | None = None

    def __call__(self) -> LeanProtocol:
        if self._idle_task is None:
            self._idle_task = asyncio.get_running_loop().create_task(self._close_idle())
        return LeanProtocol(self)

    async def _close_idle(self) -> None:
        """One sweep every few seconds instead of a timer per request (aiohttp closes
        the idle connections it owns itself)."""
        while True:
            await asyncio.sleep(min(5.0, IDLE_TIMEOUT_S / 4))
            cutoff = time.monotonic() - IDLE_TIMEOUT_S
            for conn in list(self.connections):
                if (conn.aiohttp is None and not conn.busy and conn.last_active < cutoff
                        and conn.transport is not None):
                    conn.transport.close()

    async def shutdown(self, grace_s: float = 10.0) -> None:
        """Close idle connections now; let requests in flight finish (bounded)."""
        self.stopping = True
        if self._idle_task is not None:
            self._idle_task.cancel()
        deadline = time.monotonic() + grace_s
        while True:
            mine = [c for c in self.connections if c.aiohttp is None]
            for conn in mine:
                if not conn.busy and not conn.queue and conn.transport is not None:
                    conn.transport.close()
            if not any(c.busy for c in mine) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
