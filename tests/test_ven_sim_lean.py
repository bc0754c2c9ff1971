"""ven-sim's lean HTTP client against servers that frame their replies differently
(Content-Length, chunked, close-delimited, Connection: close, idle connections closed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from tests.conftest import Served, free_port
from tests.oadr import register
from ven_sim.lean import LeanClient
from vtn.codec import decode, encode
from vtn.codec import messages as m

Reply = Callable[[bytes], bytes]


async def raw_server(reply: Reply) -> tuple[asyncio.AbstractServer, int, list[int]]:
    """Answers every request with reply(body); counts connections."""
    accepted: list[int] = []

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                body = await r.readexactly(length)
                out = reply(body)
                w.write(out)
                await w.drain()
                if b"Connection: close" in out or b"Content-Length" not in out and (
                        b"chunked" not in out):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    return server, port, accepted


@pytest.fixture
async def client() -> AsyncIterator[Callable[[int], LeanClient]]:
    made: list[LeanClient] = []

    def make(port: int) -> LeanClient:
        c = LeanClient(f"http://127.0.0.1:{port}", limit=4, timeout_s=5)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


def sized(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body[::-1])


def chunked(body: bytes) -> bytes:
    rev = body[::-1]
    half = len(rev) // 2
    return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n%x;ext=1\r\n%s\r\n0\r\n\r\n" % (half, rev[:half], len(rev) - half,
                                                          rev[half:]))


def close_delimited(body: bytes) -> bytes:
    return b"HTTP/1.0 201 Created\r\n\r\n" + body[::-1]


@pytest.mark.parametrize("framing", [sized, chunked, close_delimited])
async def test_replies_are_read_whatever_their_framing(framing: Reply, client) -> None:  # type: ignore[no-untyped-def]
    server, port, accepted = await raw_server(framing)
    try:
        c = client(port)
        for body in (b"hello", b"x" * 70_000, b"third"):
            status, data = await c.post("/OpenADR2/Simple/2.0b/OadrPoll", body)
            assert data == body[::-1]
            assert status == (201 if framing is close_delimited else 200)
        # keep-alive framings reuse one connection; close-delimited needs one per request
        assert len(accepted) == (3 if framing is close_delimited else 1)
    finally:
        server.close()


async def test_a_connection_the_server_closed_is_not_reused(client) -> None:  # type: ignore[no-untyped-def]
    def once(body: bytes) -> bytes:
        return sized(body).replace(b"200 OK\r\n", b"200 OK\r\nConnection: close\r\n")

    server, port, accepted = await raw_server(once)
    try:
        c = client(port)
        for _ in range(3):
            assert (await c.post("/x", b"abc"))[1] == b"cba"
        assert len(accepted) == 3
    finally:
        server.close()


async def test_no_answer_is_a_timeout_and_a_refused_port_a_connection_error() -> None:
    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    port = free_port()
    server = await asyncio.start_server(silent, "127.0.0.1", port)
    try:
        with pytest.raises(TimeoutError):
            await LeanClient(f"http://127.0.0.1:{port}", timeout_s=0.3).post("/x", b"a")
    finally:
        server.close()
    with pytest.raises(OSError):
        await LeanClient(f"http://127.0.0.1:{free_port()}", timeout_s=2).post("/x", b"a")


async def test_polls_against_the_vtn_reuse_connections(served: Served) -> None:
    reg = await register(served.vtn)
    c = LeanClient(f"http://127.0.0.1:{served.vtn.config.http.port}", limit=2)
    try:
        replies = await asyncio.gather(*(
            c.post("/OpenADR2/Simple/2.0b/OadrPoll", encode(m.Poll(ven_id=reg.ven_id)))
            for _ in range(20)
        ))
        assert all(status == 200 for status, _ in replies)
        assert all(isinstance(decode(body), m.Response | m.RegisterReport) for _, body in replies)
        assert sum(len(v) for v in c.idle.values()) <= 2  # at most `limit` connections
    finally:
        await c.close()
