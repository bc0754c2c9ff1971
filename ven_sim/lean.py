"""A lean HTTP/1.1 client for the fleet: keep-alive connections to one VTN, one request in
flight per connection, a fraction of aiohttp's client cost per request.

A fleet of 100k simulated VENs sends ~2,000 requests/s from one process on the same
machine as the VTN, so the client's cost per request is the simulator's budget. This
client knows just what OpenADR 2.0b over HTTP needs (POST, Content-Length or chunked or
close-delimited replies, TLS with a client certificate per context); ``--http aiohttp``
keeps the general-purpose client.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit


class HttpError(ConnectionError):
    """The server's reply was not HTTP/1.x we understand, or the connection broke."""


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.reply: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._try_complete(eof=False)

    def eof_received(self) -> bool | None:
        self._try_complete(eof=True)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._try_complete(eof=True)
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(exc or HttpError("connection closed before the reply"))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        assert self.transport is not None
        self.reply = asyncio.get_running_loop().create_future()
        self.buf.clear()
        self.transport.write(data)
        return self.reply

    def _try_complete(self, eof: bool) -> None:
        if self.reply is None or self.reply.done():
            return
        try:
            parsed = _parse(self.buf, eof)
        except HttpError as exc:
            self.reply.set_exception(exc)
            return
        if parsed is not None:
            self.reply.set_result(parsed)


def _parse(buf: bytearray, eof: bool) -> tuple[int, bytes, bool] | None:
    """(status, body, keep-alive) once the whole reply is in ``buf``, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if eof:
            raise HttpError("connection closed in the reply headers")
        return None
    lines = bytes(buf[:end]).split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"not an HTTP reply: {lines[0][:40]!r}")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    keep = headers.get(b"connection", b"").lower() != b"close" and parts[0] == b"HTTP/1.1"
    start = end + 4
    if b"content-length" in headers:
        length = int(headers[b"content-length"])
        if len(buf) - start < length:
            if eof:
                raise HttpError("connection closed in the reply body")
            return None
        return int(parts[1]), bytes(buf[start : start + length]), keep
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _chunked(buf, start)
        if body is None:
            if eof:
                raise HttpError("connection closed in a chunked reply")
            return None
        return int(parts[1]), body, keep
    if not eof:  # delimited by the end of the connection
        return None
    return int(parts[1]), bytes(buf[start:]), False


def _chunked(buf: bytearray, pos: int) -> bytes | None:
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        except ValueError:
            raise HttpError("bad chunk size") from None
        if size == 0:  # then optional trailers and an empty line
            return bytes(out) if buf.find(b"\r\n\r\n", eol) >= 0 else None
        if len(buf) < eol + 2 + size + 2:
            return None
        out += buf[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


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
