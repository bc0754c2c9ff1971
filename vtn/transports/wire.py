"""Bytes on the wire for the fast path: response heads, the over-capacity answer, and
where a pipelined message starts (found with llhttp itself, not by hand)."""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus

import httptools

from vtn.services.dispatch import Reply

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_date = [0, b""]
_BUSY = b"too many connections, retry\n"
BUSY_REPLY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
              b"Content-Length: %d\r\nRetry-After: 5\r\nConnection: close\r\n\r\n%s"
              % (len(_BUSY), _BUSY))


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


class _Counter:
    """Parser callbacks that only count message starts (see message_start)."""

    def __init__(self) -> None:
        self.begun = 0

    def on_message_begin(self) -> None:
        self.begun += 1


def message_start(raw: bytes | bytearray, index: int) -> int:
    """Offset in ``raw`` (which starts at a message boundary) of the first byte of message
    number ``index``: the shortest prefix in which llhttp sees index + 1 messages begin.
    Only needed when a pipelined request after served ones goes to aiohttp (rare)."""
    lo, hi = 1, len(raw)
    while lo < hi:
        mid = (lo + hi) // 2
        counter = _Counter()
        try:
            httptools.HttpRequestParser(counter).feed_data(bytes(raw[:mid]))
        except httptools.HttpParserError:
            pass  # an error in message ``index`` itself comes after its first byte
        if counter.begun > index:
            hi = mid
        else:
            lo = mid + 1
    return lo - 1


