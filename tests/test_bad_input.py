"""Hostile and broken input over real HTTP: clear 4xx or OpenADR errors, never a 500."""

from __future__ import annotations

import aiohttp

from tests.conftest import Served
from tests.oadr import register
from vtn.codec import decode, encode
from vtn.codec import messages as m

XML = {"Content-Type": "application/xml"}


async def post(url: str, body: bytes, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers or XML) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.read()


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<oadrPayload xmlns="http://openadr.org/oadr-2.0b/2012/07"><oadrSignedObject>
<oadrPoll><venID xmlns="http://docs.oasis-open.org/ns/energyinterop/201110">&xxe;</venID></oadrPoll>
</oadrSignedObject></oadrPayload>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<oadrPayload xmlns="http://openadr.org/oadr-2.0b/2012/07">&lol3;</oadrPayload>"""


async def test_malformed_and_hostile_xml_get_400_problem(served: Served) -> None:
    url = f"{served.url}/OadrPoll"
    for body in (b"<oadrPayload", XXE, LAUGHS, b"\xff\xfe<bad/>", b"<html/>", b""):
        status, ctype, payload = await post(url, body)
        assert status == 400, body
        assert ctype.startswith("application/problem+json")
        assert b"root:" not in payload  # nothing from /etc/passwd leaks back


async def test_wrong_content_type_is_415(served: Served) -> None:
    body = encode(m.Poll(ven_id="x"))
    status, ctype, _ = await post(f"{served.url}/OadrPoll", body, {"Content-Type": "text/plain"})
    assert status == 415 and ctype.startswith("application/problem+json")


async def test_body_over_limit_is_413_before_parsing(served: Served) -> None:
    limit = served.vtn.config.http.max_body_bytes
    status, _, _ = await post(f"{served.url}/EiReport", b"<a>" + b"x" * (limit + 10) + b"</a>")
    assert status == 413

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536

    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{served.url}/EiReport", data=chunks(), headers=XML) as r,
    ):
        assert r.status == 413


async def test_unknown_service_is_404(served: Served) -> None:
    status, _, _ = await post(f"{served.url}/EiNothing", encode(m.Poll(ven_id="x")))
    assert status == 404


async def test_schema_invalid_message_gets_454_in_its_response_type(served: Served) -> None:
    body = encode(m.CreatePartyRegistration(request_id="bad-1", ven_name="osb-1"))
    broken = body.replace(b"<oadr:oadrProfileName>2.0b</oadr:oadrProfileName>", b"")
    assert broken != body
    status, _, payload = await post(f"{served.url}/EiRegisterParty", broken)
    assert status == 200
    reply = decode(payload)
    assert isinstance(reply, m.CreatedPartyRegistration)
    assert reply.response.code == 454 and reply.response.request_id == "bad-1"


async def test_message_on_the_wrong_service_is_refused(served: Served) -> None:
    await register(served.vtn)
    status, _, payload = await post(
        f"{served.url}/EiEvent",
        encode(m.RegisterReport(request_id="rr-wrong", ven_id="whatever")),
    )
    reply = decode(payload)
    assert status == 200 and isinstance(reply, m.RegisteredReport)
    assert reply.response.code == 454 and reply.response.request_id == "rr-wrong"
    assert await served.vtn.store.ders_of_ven("whatever") == []


async def test_ids_that_look_like_numbers_stay_strings(served: Served) -> None:
    served.vtn.config.registration.open_enrollment = True
    status, _, payload = await post(
        f"{served.url}/EiRegisterParty",
        encode(m.CreatePartyRegistration(request_id="007", ven_name="0042", ven_id="000123")),
    )
    reply = decode(payload)
    assert status == 200 and isinstance(reply, m.CreatedPartyRegistration)
    assert reply.ven_id == "000123" and reply.response.request_id == "007"
    ven = await served.vtn.store.get_ven("000123")
    assert ven is not None and ven.ven_name == "0042"
