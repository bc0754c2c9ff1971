"""Limits of the HTTP layer on both paths (http.fast_path on and off), over raw sockets:
a header deadline, a connection cap answered with 503, no stuck connection when the
hand-over to aiohttp happens while writes are paused, bare-LF heads answered at once."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Served, serve
from tests.test_http_framing import connect, post, read_response
from vtn.codec import encode
from vtn.codec import messages as m
from vtn.config import Config

HEALTH = b"GET /health HTTP/1.1\r\nHost: vtn\r\n\r\n"


@pytest.fixture(params=[True, False], ids=["fast_path", "aiohttp_only"])
async def limited(config: Config, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    config.http.fast_path = request.param
    config.http.header_timeout_s = 0.5
    config.http.max_connections = 8
    s = await serve(config)
    yield s
    await s.stop()


async def test_a_head_that_trickles_in_is_cut_off_and_health_still_answers(
    limited: Served,
) -> None:
    slow = []
    for _ in range(6):  # slowloris: one header byte now and then, never the blank line
        r, w = await connect(limited)
        w.write(b"GET /health HTTP/1.1\r\nX-Slow: ")
        slow.append((r, w))
    for _ in range(8):
        for _, w in slow:
            if not w.is_closing():
                try:
                    w.write(b"a")
                except ConnectionError:
                    pass  # the VTN cut it off
        await asyncio.sleep(0.1)
    for r, w in slow:  # past the deadline each is answered 408 (fast path) or closed
        try:
            rest = await asyncio.wait_for(r.read(), 5)
        except ConnectionError:
            rest = b""  # closed while we were still writing
        assert rest == b"" or rest.startswith(b"HTTP/1.1 408 ")
        w.close()
    r, w = await connect(limited)
    w.write(HEALTH)
    status, _, body = await read_response(r)
    assert status == 200 and json.loads(body)["status"] == "ok"
    w.close()




async def test_a_silent_connection_is_closed_after_the_header_deadline(
    limited: Served,
) -> None:
    r, w = await connect(limited)  # connects, never sends a byte
    rest = await asyncio.wait_for(r.read(), 5)
    assert rest == b"" or rest.startswith(b"HTTP/1.1 408 ")
    w.close()


async def test_past_the_connection_cap_new_connections_get_503(limited: Served) -> None:
    held = [await connect(limited) for _ in range(8)]
    for r, w in held[:2]:  # connections in use are kept and served
        w.write(HEALTH)
        assert (await read_response(r))[0] == 200
    r, w = await connect(limited)  # the 9th
    status, headers, body = await read_response(r)
    assert status == 503 and headers["connection"].lower() == "close"
    assert headers["retry-after"] == "5" and b"too many connections" in body
    assert await asyncio.wait_for(r.read(), 5) == b""
    w.close()
    held[0][1].close()
    await asyncio.sleep(0.2)
    r, w = await connect(limited)  # a slot is free again
    w.write(HEALTH)
    assert (await read_response(r))[0] == 200
    for _, hw in [*held[1:], (r, w)]:
        hw.close()


async def test_a_bare_lf_head_gets_an_answer_without_waiting(served: Served) -> None:
    r, w = await connect(served)
    w.write(post("OadrPoll", encode(m.Poll(ven_id="nobody"))).replace(b"\r\n", b"\n"))
    status, _, _ = await read_response(r)  # aiohttp's answer, not the idle sweep's close
    assert status == 400
    w.close()


async def test_the_hand_over_while_writes_are_paused_does_not_stick(served: Served) -> None:
    """A client pipelines many polls without reading (the VTN's writes pause), then a
    request that goes to aiohttp; once it reads, every answer arrives."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", served.vtn.config.http.port))
    r, w = await asyncio.open_connection(sock=sock)
    poll = post("OadrPoll", encode(m.Poll(ven_id="nobody")))
    before, after = 8000, 3000
    w.write(poll * before + HEALTH + poll * after)
    await asyncio.sleep(2.0)  # the VTN answers until its send buffer is full, then pauses
    kinds = []
    for _ in range(before + 1 + after):
        status, headers, body = await asyncio.wait_for(read_response(r), 10)
        assert status == 200
        kinds.append("health" if headers["content-type"].startswith("application/json")
                     else "oadr")
    assert kinds.index("health") == before and kinds.count("oadr") == before + after
    w.close()
