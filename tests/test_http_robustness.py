"""The fast path answers exactly as aiohttp does (``http.fast_path = false``), over real
sockets: chosen cases the hand-written framing got wrong, and a bounded property-based
run over request heads, bodies cut at random points and pipelined mixes. Compared: each
response's status line, key headers and body, and whether the connection closed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import free_port, make_vtn
from vtn.codec import encode
from vtn.codec import messages as m
from vtn.config import load_config
from vtn.transports.site import HttpSite

OADR = b"/OpenADR2/Simple/2.0b"
POLL = encode(m.Poll(ven_id="nobody"))
EVENT = encode(m.RequestEvent(request_id="e1", ven_id="nobody"))
SENTINEL = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
KEY_HEADERS = ("content-type", "content-length", "connection", "transfer-encoding")


class Pair:
    """The same VTN twice on one loop: fast path on, and everything through aiohttp."""

    def __init__(self, tmp: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.sites, self.ports = loop, [], []
        for fast in (True, False):
            config = load_config(None, data_dir=tmp / f"fast-{fast}", **{
                "http.port": free_port(), "http.fast_path": fast,
                "http.body_timeout_s": 0.3, "http.header_timeout_s": 2.0})
            vtn = make_vtn(config)
            site = HttpSite(vtn, "127.0.0.1", config.http.port, lingering_time=0.2)
            loop.run_until_complete(site.start())
            self.sites.append(site)
            self.ports.append(config.http.port)

    def answers(self, data: bytes) -> tuple[list[object], list[object]]:
        async def both() -> tuple[list[object], list[object]]:
            fast, plain = await asyncio.gather(
                exchange(self.ports[0], data), exchange(self.ports[1], data))
            return fast, plain

        return self.loop.run_until_complete(both())

    def close(self) -> None:
        for site in self.sites:
            self.loop.run_until_complete(site.stop())


async def exchange(port: int, data: bytes) -> list[object]:
    """Send ``data`` then the closing sentinel; every response until the server closes."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(data + SENTINEL)
    raw = b""
    try:
        async with asyncio.timeout(8):
            while chunk := await r.read(65536):
                raw += chunk
    except ConnectionError:
        raw += b"<reset>"
    finally:
        w.close()
    return normalise(raw)


def normalise(raw: bytes) -> list[object]:
    out: list[object] = []
    while raw:
        end = raw.find(b"\r\n\r\n")
        if end < 0:
            out.append(("trailing", raw))
            break
        lines = raw[:end].split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode()] = value.strip()
        length = int(headers.get("content-length", b"0"))
        body = raw[end + 4 : end + 4 + length]
        raw = raw[end + 4 + length :]
        out.append((lines[0], {k: headers.get(k) for k in KEY_HEADERS}, body))
    return out


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    loop = asyncio.new_event_loop()
    p = Pair(tmp_path_factory.mktemp("pair"), loop)
    yield p
    p.close()
    loop.close()


def post(*headers: bytes, body: bytes = POLL, service: bytes = b"OadrPoll",
         eol: bytes = b"\r\n", version: bytes = b"HTTP/1.1") -> bytes:
    head = [b"POST " + OADR + b"/" + service + b" " + version, *headers]
    return eol.join(head) + eol + eol + body


def plain(*extra: bytes, body: bytes = POLL) -> bytes:
    return post(b"Host: vtn", b"Content-Type: application/xml",
                b"Content-Length: %d" % len(body), *extra, body=body)


CASES = {
    "bare LF line endings": post(b"Host: vtn", b"Content-Type: application/xml",
                                 b"Content-Length: %d" % len(POLL), eol=b"\n"),
    "no Host": post(b"Content-Type: application/xml", b"Content-Length: %d" % len(POLL)),
    "Connection: keep-alive, close then more": plain(b"Connection: keep-alive, close")
    + plain(),
    "pipelined after Connection: close": plain(b"Connection: close") + plain(),
    "1,390 header lines": plain(*[b"X-Filler-%d: v" % i for i in range(1390)]),
    "HTTP/1.0": post(b"Host: vtn", b"Content-Type: application/xml",
                     b"Content-Length: %d" % len(POLL), version=b"HTTP/1.0"),
    "two Content-Lengths": plain(b"Content-Length: 3"),
    "pipelined poll, health, poll": plain() + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    + plain(),
    "body cut, next request eaten": plain()[:-25] + plain(),
    "obs-fold header": plain(b"X-A: 1", b" folded"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_chosen_cases_are_answered_like_aiohttp(pair: Pair, name: str) -> None:
    fast, plain_ = pair.answers(CASES[name])
    assert fast == plain_
    assert fast, "the server answered something (the sentinel at least)"


# --- property-based: generated request streams --------------------------------------

PATHS = [OADR + b"/OadrPoll", OADR + b"/EiEvent", OADR + b"/NoSuchService",
         OADR + b"/Oadr%50oll", b"/health", b"/api/v1/vens", OADR + b"/OadrPoll?x=1"]
BODIES = [POLL, EVENT, b"<oadrPayload", b"", b"not xml at all"]
HEADERS = [b"Content-Type: application/xml", b"Content-Type: text/plain",
           b"Content-Type: text/xml; charset=utf-8", b"Connection: close",
           b"Connection: keep-alive", b"Connection: keep-alive, close", b"Expect: 100-continue",
           b"X-Filler: v", b"Accept: */*", b"host: second", b"Content-Length: 0",
           b"Bad Header", b" folded", b"Transfer-Encoding: chunked"]


@st.composite
def request(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from([b"POST"] * 6 + [b"GET", b"PUT"]))
    path = draw(st.sampled_from(PATHS))
    version = draw(st.sampled_from([b"HTTP/1.1"] * 8 + [b"HTTP/1.0", b"HTTP/2.0"]))
    eol = draw(st.sampled_from([b"\r\n"] * 9 + [b"\n"]))
    body = draw(st.sampled_from(BODIES))
    headers = [b"Host: vtn"] if draw(st.integers(0, 9)) else []
    headers += draw(st.lists(st.sampled_from(HEADERS), max_size=4))
    headers += [b"X-Many-%d: v" % i for i in range(draw(st.sampled_from([0, 0, 0, 40, 200])))]
    length = draw(st.sampled_from(["exact"] * 6 + ["none", "short", "long"]))
    if length != "none":
        n = len(body) + {"exact": 0, "short": -3, "long": 7}[length]
        headers.insert(draw(st.integers(0, len(headers))), b"Content-Length: %d" % max(n, 0))
    head = eol.join([method + b" " + path + b" " + version, *headers]) + eol + eol
    return head + body


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(stream=st.lists(request(), min_size=1, max_size=3), cut=st.integers(0, 2000),
       do_cut=st.booleans())
def test_generated_request_streams_are_answered_like_aiohttp(
    pair: Pair, stream: list[bytes], cut: int, do_cut: bool
) -> None:
    data = b"".join(stream)
    if do_cut:  # a stream cut at a random point (the sentinel then follows the cut)
        data = data[: cut % (len(data) + 1)]
    fast, plain_ = pair.answers(data)
    assert fast == plain_, data[:300]


def test_normalise_reads_what_servers_send() -> None:
    raw = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: x\r\n\r\nokHTTP/1.1 404 Not Found"
           b"\r\nContent-Type: a\r\nContent-Length: 0\r\n\r\n")
    got = normalise(raw)
    assert [g[0] for g in got] == [b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found"]  # type: ignore[index]
    assert re.sub(rb"\s", b"", b"a b") == b"ab"
