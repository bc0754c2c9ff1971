"""HTTP framing of the OpenADR endpoints (vtn/transports/lean_http) over raw sockets:
keep-alive, pipelining, slow bodies, Connection: close, and the hand-over to aiohttp for
everything else on the same connection. Both settings of http.fast_path answer alike."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Served, serve
from tests.oadr import register
from tests.security_support import client_context, make_pki, serve_tls, tls_config
from vtn.codec import decode, encode, validate
from vtn.codec import messages as m
from vtn.config import Config
from vtn.transports import lean_http

OADR = "/OpenADR2/Simple/2.0b"


def post(service: str, body: bytes, *extra: str, ctype: str = "application/xml") -> bytes:
    head = [f"POST {OADR}/{service} HTTP/1.1", "Host: vtn", f"Content-Type: {ctype}",
            f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def read_response(r: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    body = await asyncio.wait_for(r.readexactly(int(headers["content-length"])), 5)
    return status, headers, body


async def connect(s: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", s.vtn.config.http.port)


@pytest.fixture(params=[True, False], ids=["fast_path", "aiohttp_only"])
async def either(config: Config, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    config.http.fast_path = request.param
    config.http.body_timeout_s = 0.5
    s = await serve(config)
    yield s
    await s.stop()


async def test_pipelined_requests_are_answered_in_order_across_the_hand_over(
    either: Served,
) -> None:
    reg = await register(either.vtn)
    poll = post("OadrPoll", encode(m.Poll(ven_id=reg.ven_id)))
    r, w = await connect(either)
    w.write(poll + poll + b"GET /health HTTP/1.1\r\nHost: vtn\r\n\r\n" + poll)
    kinds = []
    for _ in range(4):
        status, headers, body = await read_response(r)
        assert status == 200
        if headers["content-type"].startswith("application/json"):
            assert json.loads(body)["status"] == "ok"
            kinds.append("health")
        else:
            assert headers["content-type"] == "application/xml"
            validate(body)
            reply = decode(body)
            assert isinstance(reply, m.Response | m.RegisterReport)
            kinds.append("oadr")
    assert kinds == ["oadr", "oadr", "health", "oadr"]
    w.close()


async def test_a_body_in_pieces_is_served_and_a_stalled_body_gets_408(either: Served) -> None:
    reg = await register(either.vtn)
    req = post("OadrPoll", encode(m.Poll(ven_id=reg.ven_id)))
    r, w = await connect(either)
    for i in range(0, len(req), 40):  # headers and body split over many segments
        w.write(req[i : i + 40])
        await w.drain()
        await asyncio.sleep(0.005)
    status, _, body = await read_response(r)
    assert status == 200 and isinstance(decode(body), m.Response | m.RegisterReport)

    r2, w2 = await connect(either)
    w2.write(req[: len(req) - 10])  # the last 10 bytes never come
    status, headers, body = await read_response(r2)
    assert status == 408 and headers["content-type"].startswith("application/problem+json")
    assert json.loads(body)["status"] == 408
    assert headers["connection"].lower() == "close"
    if either.vtn.config.http.fast_path:  # aiohttp lingers for lingering_time instead
        assert await asyncio.wait_for(r2.read(), 5) == b""  # half-closed at once
    for writer in (w, w2):
        writer.close()


async def test_connection_close_is_honoured(either: Served) -> None:
    reg = await register(either.vtn)
    r, w = await connect(either)
    w.write(post("OadrPoll", encode(m.Poll(ven_id=reg.ven_id)), "Connection: close"))
    status, headers, _ = await read_response(r)
    assert status == 200 and headers.get("connection", "").lower() == "close"
    assert await asyncio.wait_for(r.read(), 5) == b""
    w.close()


async def test_errors_are_the_same_on_both_paths(either: Served) -> None:
    reg = await register(either.vtn)
    poll = encode(m.Poll(ven_id=reg.ven_id))
    limit = either.vtn.config.http.max_body_bytes
    cases = {  # request -> (status, content type)
        post("OadrPoll", poll, ctype="text/plain"): (415, "application/problem+json"),
        post("NoSuchService", poll): (404, "application/problem+json"),
        post("OadrPoll", b"<oadrPayload"): (400, "application/problem+json"),
        post("OadrPoll", poll, ctype="text/xml; charset=utf-8"): (200, "application/xml"),
        post("OadrPoll", encode(m.Poll(ven_id="nobody"))): (200, "application/xml"),
    }
    r, w = await connect(either)
    for req, (status, ctype) in cases.items():
        w.write(req)
        got_status, headers, body = await read_response(r)
        assert (got_status, headers["content-type"].split(";")[0]) == (status, ctype), req[:60]
        if ctype == "application/xml":
            validate(body)
    # a body announced over the limit is refused before it is sent, and the socket closed
    w.write(post("OadrPoll", b"")[:-4].replace(b"Content-Length: 0",
                                                f"Content-Length: {limit + 1}".encode())
            + b"\r\n\r\n")
    status, headers, _ = await read_response(r)
    assert status == 413
    w.close()


async def test_bad_http_gets_400_and_the_server_keeps_serving(served: Served) -> None:
    reg = await register(served.vtn)
    r, w = await connect(served)
    w.write(b"POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nBad Header\r\n\r\n")
    status, _, _ = await read_response(r)
    assert status == 400
    w.close()
    r, w = await connect(served)
    w.write(post("OadrPoll", encode(m.Poll(ven_id=reg.ven_id))))
    status, headers, _ = await read_response(r)
    assert status == 200 and headers["server"] == "oadr-vtn"  # the fast path answered
    w.close()


async def test_idle_keep_alive_connections_are_closed(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lean_http, "IDLE_TIMEOUT_S", 0.4)
    s = await serve(config)
    try:
        reg = await register(s.vtn)
        r, w = await connect(s)
        w.write(post("OadrPoll", encode(m.Poll(ven_id=reg.ven_id))))
        assert (await read_response(r))[0] == 200
        assert await asyncio.wait_for(r.read(), 3) == b""  # closed by the VTN when idle
        w.close()
    finally:
        await s.stop()


async def test_other_endpoints_work_over_tls_on_the_same_port(config: Config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pki = make_pki(tmp_path / "pki")
    s = await serve_tls(tls_config(config, pki))
    try:
        ctx = client_context(pki, "osb-a")
        r, w = await asyncio.open_connection(
            "localhost", config.http.port, ssl=ctx, server_hostname="localhost"
        )
        w.write(post("OadrPoll", encode(m.Poll(ven_id="nobody"))))
        status, headers, body = await read_response(r)
        assert status == 200 and headers["server"] == "oadr-vtn"
        assert decode(body).response.code == m.NOT_REGISTERED_OR_AUTHORIZED  # type: ignore[attr-defined]
        # (a request aiohttp serves takes the ones pipelined before it in the same read
        # along: aiohttp's own parser would lose them if it failed later in that read)
        w.write(b"GET /health HTTP/1.1\r\nHost: vtn\r\n\r\n")
        status, headers, body = await read_response(r)
        assert status == 200 and json.loads(body)["status"] == "ok"
        w.close()
    finally:
        await s.stop()
