"""OpenADR 2.0b rules beyond the XSD, over HTTP: a message declaring another
schemaVersion is refused with 459 in the response type it expects."""

from __future__ import annotations

import aiohttp

from tests.conftest import Served
from tests.oadr import register
from vtn.codec import decode, encode, validate
from vtn.codec import messages as m

XML = {"Content-Type": "application/xml"}
V2B = b'ei:schemaVersion="2.0b"'


async def post(served: Served, service: str, body: bytes) -> m.Message:
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{served.url}/{service}", data=body, headers=XML) as r,
    ):
        assert r.status == 200
        data = await r.read()
    validate(data)
    return decode(data)


async def test_another_schema_version_is_refused_with_459(served: Served) -> None:
    reg = await register(served.vtn)
    assert reg.ven_id is not None
    event = encode(m.RequestEvent(request_id="e1", ven_id=reg.ven_id))
    poll = encode(m.Poll(ven_id=reg.ven_id))
    assert V2B in event and V2B in poll
    # the XSD admits 2.0a and extension tokens: the profile does not
    for declared in (b'ei:schemaVersion="2.0a"', b'ei:schemaVersion="x-2.1"'):
        reply = await post(served, "EiEvent", event.replace(V2B, declared))
        assert isinstance(reply, m.DistributeEvent)
        assert reply.response.code == m.COMPLIANCE_ERROR  # type: ignore[union-attr]
        assert reply.response.request_id == "e1"  # type: ignore[union-attr]
        reply = await post(served, "OadrPoll", poll.replace(V2B, declared))
        assert isinstance(reply, m.Response) and reply.response.code == m.COMPLIANCE_ERROR
    # a new VEN declaring 2.0a is not registered
    served.vtn.config.registration.open_enrollment = True
    create = encode(m.CreatePartyRegistration(request_id="r9", ven_name="new-ven"))
    reply = await post(served, "EiRegisterParty",
                       create.replace(V2B, b'ei:schemaVersion="2.0a"'))
    assert isinstance(reply, m.CreatedPartyRegistration)
    assert reply.response.code == m.COMPLIANCE_ERROR and reply.ven_id is None
    assert await served.vtn.store.find_ven_by_name("new-ven") is None


async def test_2_0b_or_no_schema_version_is_accepted(served: Served) -> None:
    reg = await register(served.vtn)
    assert reg.ven_id is not None
    event = encode(m.RequestEvent(request_id="e1", ven_id=reg.ven_id))
    for declared in (V2B, b"", b"ei:schemaVersion='2.0b'", b'ei:schemaVersion=" 2.0b "'):
        reply = await post(served, "EiEvent", event.replace(V2B, declared))
        assert reply.response.code == m.OK  # type: ignore[attr-defined]
    # what the XSD refuses stays a schema error (454)
    reply = await post(served, "EiEvent", event.replace(V2B, b'ei:schemaVersion="3.0"'))
    assert reply.response.code == m.INVALID_DATA  # type: ignore[attr-defined]
