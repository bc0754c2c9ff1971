"""The OpenADR endpoints' hot path: HTTP/1.1 framing without aiohttp's request objects.

A VEN polls the same endpoint every few seconds for years, so per-request overhead is
most of what a VTN spends. This protocol frames only the plain case, a keep-alive
``POST <prefix>/OpenADR2/Simple/2.0b/<Service> HTTP/1.1`` with a Content-Length and well
formed headers, and hands the body to the engine. Anything else (other paths and methods,
chunked or ``Expect`` bodies, HTTP/1.0, odd or oversized headers, a body over the limit)
switches the connection, at that request boundary, to aiohttp's own protocol, which then
answers it exactly as it always did (the API, 413 with lingering, 400 for bad HTTP...).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

from vtn.security import tls
from vtn.services.dispatch import Reply, problem

if TYPE_CHECKING:
    from vtn.app import Vtn

log = logging.getLogger(__name__)

MAX_HEAD = 8190  # header section we frame ourselves; longer ones go to aiohttp
IDLE_TIMEOUT_S = 75.0  # an idle keep-alive connection is closed after this
LINGER_S = 2.0  # after a closing error reply, read and discard this long (client sees it)
XML_TYPES = {b"application/xml", b"text/xml"}
_REQUEST_LINE = re.compile(rb"POST (/[!-~]*) HTTP/1\.1")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_DIGITS = re.compile(rb"[0-9]{1,12}")
_HANDOFF_HEADERS = {b"transfer-encoding", b"expect", b"upgrade"}
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_date = [0, b""]


def http_date() -> bytes:
    now = int(time.time())
    if now != _date[0]:
        _date[0], _date[1] = now, formatdate(now, usegmt=True).encode()
    return _date[1]  # type: ignore[return-value]


def response_bytes(reply: Reply, close: bool = False) -> bytes:
    ctype = reply.content_type.encode()
    if ctype.startswith(b"application/problem+json"):
        ctype += b"; charset=utf-8"
    return b"".join((
        b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\n"
        % (reply.status, _REASONS.get(reply.status, b"Unknown"), ctype, len(reply.body),
           http_date()),
        b"Server: oadr-vtn\r\nConnection: close\r\n\r\n" if close else b"Server: oadr-vtn\r\n\r\n",
        reply.body,
    ))


class Request:
    __slots__ = ("service", "headers", "body_start", "length", "keep_alive")

    def __init__(self, service: str, headers: dict[bytes, bytes], body_start: int,
                 length: int, keep_alive: bool) -> None:
        self.service, self.headers, self.body_start = service, headers, body_start
        self.length, self.keep_alive = length, keep_alive


def frame(buf: bytearray | bytes, prefix: bytes, limit: int) -> Request | None | bool:
    """The request at the start of ``buf``: a Request, None (headers not complete yet) or
    False (not ours: hand the connection to aiohttp)."""
    end = buf.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
    if end < 0:
        return None if len(buf) <= MAX_HEAD else False
    lines = bytes(buf[:end]).split(b"\r\n")
    line = _REQUEST_LINE.fullmatch(lines[0])
    if line is None:
        return False
    path = line.group(1)
    if not path.startswith(prefix):
        return False
    service = path[len(prefix):]
    if not service.isalpha() or not service.isascii():
        return False
    headers: dict[bytes, bytes] = {}
    for raw in lines[1:]:
        name, sep, value = raw.partition(b":")
        if not sep or _TOKEN.fullmatch(name) is None or _VALUE.fullmatch(value) is None:
            return False  # includes obs-fold (a line starting with whitespace)
        name = name.lower()
        if name in headers or name in _HANDOFF_HEADERS:
            return False
        headers[name] = value.strip(b" \t")
    length = headers.get(b"content-length")
    if length is None or _DIGITS.fullmatch(length) is None or int(length) > limit:
        return False  # aiohttp answers 413 (with lingering) or reads an unsized body
    keep_alive = headers.get(b"connection", b"").lower() != b"close"
    return Request(service.decode(), headers, end + 4, int(length), keep_alive)


class LeanProtocol(asyncio.Protocol):
    """One client connection on the OpenADR hot path (see the module docstring)."""

    def __init__(self, server: LeanServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy = False  # a request is being handled; later bytes wait in buf
        self.closing = False
        self.write_paused = False
        self.last_active = 0.0
        self.body_timer: asyncio.TimerHandle | None = None
        self._fingerprint: str | None | bool = False  # False: not looked up yet

    # --- asyncio callbacks ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.last_active = time.monotonic()
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self._cancel_body_timer()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return  # lingering after a closing reply: discard
        self.buf += data
        self.last_active = time.monotonic()
        if not self.busy:
            self.next_request()
        elif len(self.buf) > self.server.limit + MAX_HEAD and self.transport is not None:
            self.transport.pause_reading()  # pipelining faster than we answer: push back

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    # --- requests ---

    def next_request(self) -> None:
        if not self.buf or self.transport is None:
            return
        req = frame(self.buf, self.server.prefix, self.server.limit)
        if req is False:
            self.hand_off()
            return
        if req is None:
            return
        assert isinstance(req, Request)
        if len(self.buf) < req.body_start + req.length:
            if self.body_timer is None:
                self.body_timer = asyncio.get_running_loop().call_later(
                    self.server.body_timeout, self.body_too_slow
                )
            return
        self._cancel_body_timer()
        body = bytes(self.buf[req.body_start : req.body_start + req.length])
        del self.buf[: req.body_start + req.length]
        self.busy = True
        asyncio.get_running_loop().create_task(self.serve(req, body))

    async def serve(self, req: Request, body: bytes) -> None:
        try:
            ctype = req.headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
            if ctype not in XML_TYPES:
                reply = problem(
                    415, "unsupported media type", "OpenADR payloads are application/xml"
                )
            else:
                reply = await self.server.vtn.engine.handle(
                    req.service, body, self.fingerprint(req.headers)
                )
        except Exception:  # the engine answers every error itself; this is a last resort
            log.exception("unexpected error on the OpenADR fast path")
            reply = problem(500, "internal error", "see the VTN log")
        finally:
            self.busy = False
        if self.transport is None:
            return  # the client went away; what was acknowledged is committed anyway
        if not self.transport.is_reading() and not self.closing and not self.write_paused:
            self.transport.resume_reading()
        keep = req.keep_alive and not self.server.stopping
        self.transport.write(response_bytes(reply, close=not keep))
        self.last_active = time.monotonic()
        if not keep:
            self.transport.close()
        elif self.buf:
            self.next_request()  # pipelined

    def body_too_slow(self) -> None:
        self.body_timer = None
        reply = problem(408, "request timeout", "the request body arrived too slowly")
        self.close_after(reply)

    def close_after(self, reply: Reply) -> None:
        """Answer, stop reading requests, and close once the client had time to read it."""
        if self.transport is None:
            return
        self.closing = True
        self.buf.clear()
        self.transport.write(response_bytes(reply, close=True))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_S, self.transport.close)

    def hand_off(self) -> None:
        """Give this connection, from the current request on, to aiohttp."""
        transport, data = self.transport, bytes(self.buf)
        assert transport is not None
        self.server.connections.discard(self)
        self._cancel_body_timer()
        self.transport, self.buf = None, bytearray()
        handler = self.server.aiohttp_factory()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        handler.data_received(data)

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


class LeanServer:
    """Protocol factory and bookkeeping for the hot path of one listening socket."""

    def __init__(self, vtn: Vtn, aiohttp_factory: Callable[[], asyncio.Protocol]) -> None:
        cfg = vtn.config
        self.vtn = vtn
        self.aiohttp_factory = aiohttp_factory
        self.prefix = (cfg.http.path_prefix.rstrip("/") + "/OpenADR2/Simple/2.0b/").encode()
        self.limit = cfg.http.max_body_bytes
        self.body_timeout = cfg.http.body_timeout_s
        header = cfg.tls.client_cert_header
        self.cert_header = header.lower().encode() if header else None
        self.proxies = tls.TrustedProxies(cfg.tls.trusted_proxies)
        self.connections: set[LeanProtocol] = set()
        self.stopping = False
        self._idle_task: asyncio.Task[None] | None = None

    def __call__(self) -> LeanProtocol:
        if self._idle_task is None:
            self._idle_task = asyncio.get_running_loop().create_task(self._close_idle())
        return LeanProtocol(self)

    async def _close_idle(self) -> None:
        """One sweep every few seconds instead of a timer per request."""
        while True:
            await asyncio.sleep(min(5.0, IDLE_TIMEOUT_S / 4))
            cutoff = time.monotonic() - IDLE_TIMEOUT_S
            for conn in list(self.connections):
                if not conn.busy and conn.last_active < cutoff and conn.transport is not None:
                    conn.transport.close()

    async def shutdown(self, grace_s: float = 10.0) -> None:
        """Close idle connections now; let requests in flight finish (bounded)."""
        self.stopping = True
        if self._idle_task is not None:
            self._idle_task.cancel()
        deadline = time.monotonic() + grace_s
        while True:
            for conn in list(self.connections):
                if not conn.busy and conn.transport is not None:
                    conn.transport.close()
            if not any(c.busy for c in self.connections) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
