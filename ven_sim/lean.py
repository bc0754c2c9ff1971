"""A lean HTTP/1.1 client for the fleet: keep-alive connections to one VTN, one request in
flight per connection, a fraction of aiohttp's client cost per request.

A fleet of 100k simulated VENs sends ~2,000 requests/s from one process on the same
machine as the VTN, so the client's cost per request is the simulator's budget. This
client knows just what OpenADR 2.0b over HTTP needs (POST, Content-Length or chunked or
close-delimited replies, parsed by httptools/llhttp; TLS with a client certificate per
context); ``--http aiohttp`` keeps the general-purpose client.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any
from urllib.parse import urlsplit

import httptools


class HttpError(ConnectionError):
    """The server's reply was not HTTP/1.x we understand, or the connection broke."""


class _Conn(asyncio.Protocol):
    """One keep-alive connection; replies parsed by httptools (llhttp)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser: Any = None
        self.body: list[bytes] = []
        self.headers_done = False
        self.framed = False  # the reply has a Content-Length or is chunked
        self.reply: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.parser is None:
            return  # nothing asked: stray bytes (the next request gets a fresh parser)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.parser = None
            self._fail(HttpError(f"not an HTTP reply we understand: {exc}"))

    def eof_received(self) -> bool | None:
        self._eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._eof()
        self._fail(exc or HttpError("connection closed before the reply"))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        assert self.transport is not None
        self.reply = asyncio.get_running_loop().create_future()
        self.parser = httptools.HttpResponseParser(self)
        self.body, self.headers_done, self.framed = [], False, False
        self.transport.write(data)
        return self.reply

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        parser, self.parser = self.parser, None
        if self.reply is not None and not self.reply.done():
            keep = parser.should_keep_alive() and parser.get_http_version() == "1.1"
            self.reply.set_result((parser.get_status_code(), b"".join(self.body), keep))

    def _eof(self) -> None:
        """A reply without Content-Length or chunking ends with the connection."""
        if self.parser is not None and self.headers_done and not self.framed:
            parser, self.parser = self.parser, None
            if self.reply is not None and not self.reply.done():
                self.reply.set_result((parser.get_status_code(), b"".join(self.body), False))
        elif self.parser is not None:
            self.parser = None
            self._fail(HttpError("connection closed in the reply"))

    def _fail(self, exc: BaseException) -> None:
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(exc)


class LeanClient:
    """Pooled keep-alive connections to the VTN at ``base_url`` (one pool per TLS
    context: a client certificate is never shared across VENs' connections)."""

    def __init__(self, base_url: str, limit: int = 64, timeout_s: float = 10.0) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.tls = url.scheme == "https"
        self.host_header = f"{self.host}:{self.port}".encode()
        self.timeout_s = timeout_s
        self.limit = asyncio.Semaphore(limit)
        self.idle: dict[int, list[_Conn]] = {}
        self.default_tls = ssl.create_default_context() if self.tls else None

    async def post(self, path: str, body: bytes, ssl_context: ssl.SSLContext | None = None,
                   content_type: bytes = b"application/xml") -> tuple[int, bytes]:
        """(status, body). Raises TimeoutError, ssl.SSLError or OSError/ConnectionError."""
        ctx = (ssl_context or self.default_tls) if self.tls else None
        key = id(ctx)
        head = (b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                % (path.encode(), self.host_header, content_type, len(body)))
        async with self.limit:
            idle = self.idle.setdefault(key, [])
            conn = None
            while idle and conn is None:
                candidate = idle.pop()
                if not candidate.closed:
                    conn = candidate
            try:
                async with asyncio.timeout(self.timeout_s):
                    if conn is None:
                        conn = await self._connect(ctx)
                    status, data, keep = await conn.request(head + body)
            except BaseException:
                if conn is not None and conn.transport is not None:
                    conn.transport.abort()
                raise
            if keep and not conn.closed:
                idle.append(conn)
            elif conn.transport is not None:
                conn.transport.close()
            return status, data

    async def _connect(self, ctx: ssl.SSLContext | None) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            _Conn, self.host, self.port, ssl=ctx, server_hostname=self.host if ctx else None
        )
        return conn

    async def close(self) -> None:
        for conns in self.idle.values():
            for conn in conns:
                if conn.transport is not None:
                    conn.transport.close()
        self.idle.clear()
