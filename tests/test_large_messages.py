"""A large OpenADR message (a 2 MB oadrRegisterReport) is decoded and validated off the
event loop: other VENs' polls are answered while it is being decoded."""

from __future__ import annotations

import asyncio
import threading

import aiohttp
import pytest

from tests.conftest import Served
from tests.oadr import metadata, register
from vtn.codec import decode, encode
from vtn.codec import messages as m
from vtn.services import dispatch

XML = {"Content-Type": "application/xml"}


async def post(s: aiohttp.ClientSession, url: str, body: bytes) -> m.Message:
    async with s.post(url, data=body, headers=XML) as r:
        assert r.status == 200
        return decode(await r.read())


async def test_polls_are_answered_while_a_large_report_is_decoded(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    big_ven = await register(served.vtn, "osb-big")
    other = await register(served.vtn, "osb-small")
    assert big_ven.ven_id and other.ven_id
    big = encode(metadata(big_ven.ven_id, {f"r{i}": "Water_Heater" for i in range(900)}))
    assert len(big) > 1_500_000
    started, release, decoded = threading.Event(), threading.Event(), threading.Event()
    real_decode = dispatch.decode

    def slow_decode(body: bytes, *, validate: bool = True) -> m.Message:
        if len(body) > 1_000_000:  # hold the large one until a poll got through
            started.set()
            release.wait(5)
            try:
                return real_decode(body, validate=validate)
            finally:
                decoded.set()
        return real_decode(body, validate=validate)

    monkeypatch.setattr(dispatch, "decode", slow_decode)
    poll = encode(m.Poll(ven_id=other.ven_id))
    async with aiohttp.ClientSession() as s:
        large = asyncio.create_task(post(s, f"{served.url}/EiReport", big))
        assert await asyncio.to_thread(started.wait, 10)
        answered = []
        for _ in range(5):  # another VEN polls, keeps being answered
            reply = await post(s, f"{served.url}/OadrPoll", poll)
            answered.append(not decoded.is_set())
        release.set()
        reply = await large
    assert answered == [True] * 5  # all five while the large one was still decoding
    assert isinstance(reply, m.RegisteredReport) and reply.response.code == 200
