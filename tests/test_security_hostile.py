"""Hostile input over real HTTP, beyond tests/test_bad_input.py: every attack is refused
quickly with a 4xx or an OpenADR error, memory stays bounded and other VENs keep being
served while it happens."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.conftest import Served, make_vtn
from tests.oadr import register
from vtn.codec import decode, encode
from vtn.codec import messages as m
from vtn.config import Config
from vtn.server import RUNNER_OPTIONS
from vtn.transports.site import HttpSite

XML = {"Content-Type": "application/xml"}
OADR = "http://openadr.org/oadr-2.0b/2012/07"
EI = "http://docs.oasis-open.org/ns/energyinterop/201110"


def payload(inner: str, oadr: str = OADR) -> bytes:
    return (
        f'<oadrPayload xmlns="{oadr}"><oadrSignedObject Id="oadrSignedObject">{inner}'
        f"</oadrSignedObject></oadrPayload>"
    ).encode()


def poll(ven: str = "ven-1", ei: str = EI, oadr: str = OADR) -> bytes:
    return payload(f'<oadrPoll xmlns:ei="{ei}"><ei:venID>{ven}</ei:venID></oadrPoll>', oadr)


DOCTYPE_ATTACKS = {
    "parameter entity": b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>""" + poll(),
    "external dtd": b'<?xml version="1.0"?><!DOCTYPE oadrPayload SYSTEM "file:///etc/passwd">'
    + poll(),
    "quadratic blowup": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' + b"x" * 50_000
    + b'">]>' + poll("&a;" * 2_000),
    "doctype in utf-16": '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x '
    'SYSTEM "file:///etc/passwd">]><oadrPayload/>'.encode("utf-16"),
}

MALFORMED = {
    "10k-deep nesting": payload("<a>" * 10_000 + "</a>" * 10_000),
    "100k-deep nesting": b"<a>" * 100_000,
    "invalid utf-8 in text": poll().replace(b"ven-1", b"ven-\xc3\x28"),
    "overlong utf-8": poll().replace(b"ven-1", b"ven-\xc0\xaf"),
    "wrong root namespace": poll(oadr="http://openadr.org/oadr-2.0a/2012/07"),
    "no namespace": b"<oadrPayload><oadrSignedObject><oadrPoll/></oadrSignedObject></oadrPayload>",
    "unknown message": payload("<oadrSomethingElse/>"),
    "nul bytes": poll().replace(b"ven-1", b"ven\x00-1"),
    "processing instruction only": b'<?xml version="1.0"?><?evil x?>',
}


@pytest.fixture
async def small(config: Config) -> AsyncIterator[Served]:
    """The VTN with the production runner options (vtn.server), slow bodies cut after 1 s."""
    config.http.body_timeout_s = 1.0
    v = make_vtn(config)
    site = HttpSite(v, "127.0.0.1", config.http.port, **{**RUNNER_OPTIONS, "lingering_time": 0.5})
    await site.start()
    s = Served(v, f"http://127.0.0.1:{config.http.port}/OpenADR2/Simple/2.0b", site)
    yield s
    await s.stop()


async def post(
    session: aiohttp.ClientSession, url: str, body: object
) -> tuple[int, str, bytes, float]:
    t0 = time.perf_counter()
    async with session.post(url, data=body, headers=XML) as r:
        return r.status, r.content_type, await r.read(), time.perf_counter() - t0


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def assert_still_serving(served: Served, ven_id: str) -> None:
    async with aiohttp.ClientSession() as s:
        status, _, body, elapsed = await post(s, f"{served.url}/OadrPoll", encode(m.Poll(ven_id)))
    assert status == 200 and elapsed < 2.0
    assert isinstance(decode(body), m.Response | m.RegisterReport)


async def test_doctype_tricks_are_refused_without_fetching_anything(small: Served) -> None:
    async with aiohttp.ClientSession() as s:
        for name, body in DOCTYPE_ATTACKS.items():
            status, ctype, reply, elapsed = await post(s, f"{small.url}/OadrPoll", body)
            assert status == 400, name
            assert ctype == "application/problem+json", name
            assert elapsed < 2.0, name
            assert b"root:" not in reply


async def test_malformed_and_wrong_namespace_documents_get_400_or_oadr_error(
    small: Served,
) -> None:
    reg = await register(small.vtn)
    rss = maxrss_mb()
    async with aiohttp.ClientSession() as s:
        for name, body in MALFORMED.items():
            status, ctype, reply, elapsed = await post(s, f"{small.url}/OadrPoll", body)
            assert elapsed < 2.0, name
            if status == 200:  # identified as OpenADR but invalid: an OpenADR error
                assert decode(reply).response.code == m.INVALID_DATA, name  # type: ignore[attr-defined]
            else:
                assert status == 400 and ctype == "application/problem+json", name
    assert maxrss_mb() - rss < 50
    await assert_still_serving(small, reg.ven_id or "")


async def test_huge_attribute_and_many_attributes(small: Served) -> None:
    limit = small.vtn.config.http.max_body_bytes
    huge = payload(f'<oadrPoll a="{"x" * (limit - 500)}"/>')
    many = payload("<oadrPoll " + " ".join(f'a{i}="x"' for i in range(limit // 16)) + "/>")
    async with aiohttp.ClientSession() as s:
        for body in (huge, many):
            assert len(body) <= limit
            status, _, reply, elapsed = await post(s, f"{small.url}/OadrPoll", body)
            assert elapsed < 5.0  # generous: CI machines are shared
            assert status == 400 or decode(reply).response.code == m.INVALID_DATA  # type: ignore[attr-defined]


async def test_100_mb_body_is_cut_off_and_memory_stays_bounded(small: Served) -> None:
    reg = await register(small.vtn)
    total = 100 * 1024 * 1024
    chunk = b"<a>" * 21_845 + b"<"  # 64 KiB

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(total // len(chunk)):
            yield chunk

    rss = maxrss_mb()
    async with aiohttp.ClientSession() as s:
        # announced length: refused before a byte of the body is read
        t0 = time.perf_counter()
        async with s.post(
            f"{small.url}/EiReport", data=b"x" * 1024,
            headers={**XML, "Content-Length": str(total)}, skip_auto_headers=(),
        ) as r:
            assert r.status == 413
        # streamed (chunked) without a length: cut off at the limit
        try:
            status, *_ = await post(s, f"{small.url}/EiReport", stream())
            assert status == 413
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
            pass  # the server may close the socket while we are still sending
        assert time.perf_counter() - t0 < 10
    assert maxrss_mb() - rss < 60
    await assert_still_serving(small, reg.ven_id or "")


async def test_slow_bodies_time_out_while_others_are_served(small: Served) -> None:
    """Slowloris: a few connections drip their body byte by byte; they get 408 after
    http.body_timeout_s and never block normal VENs."""
    reg = await register(small.vtn)
    body = encode(m.Poll(ven_id=reg.ven_id or ""))

    async def drip() -> AsyncIterator[bytes]:
        for i in range(len(body)):
            yield body[i : i + 1]
            await asyncio.sleep(0.5)

    async def slow_client() -> int:
        async with aiohttp.ClientSession() as s:
            try:
                status, *_ = await post(s, f"{small.url}/OadrPoll", drip())
                return status
            except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
                return 408

    t0 = time.perf_counter()
    slow = [asyncio.create_task(slow_client()) for _ in range(20)]
    await asyncio.sleep(0.2)
    for _ in range(5):
        await assert_still_serving(small, reg.ven_id or "")
    assert await asyncio.gather(*slow) == [408] * 20
    assert time.perf_counter() - t0 < 5


async def test_slow_headers_do_not_block_the_server(small: Served) -> None:
    reg = await register(small.vtn)
    port = small.vtn.config.http.port
    writers = []
    for _ in range(20):
        _, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nHost: x\r\n")
        writers.append(w)
    try:
        await assert_still_serving(small, reg.ven_id or "")
    finally:
        for w in writers:
            w.close()


async def test_burst_of_hostile_requests_leaves_the_process_serving(small: Served) -> None:
    reg = await register(small.vtn)
    bodies = list(DOCTYPE_ATTACKS.values()) + list(MALFORMED.values())
    async with aiohttp.ClientSession() as s:
        results = await asyncio.gather(
            *(post(s, f"{small.url}/OadrPoll", b) for b in bodies * 10)
        )
    assert all(status in (200, 400) for status, *_ in results)
    await assert_still_serving(small, reg.ven_id or "")
