"""The XMPP binding against a real Prosody: VENs' requests through the VTN's XMPP session
to the same engine as HTTP (every reply XSD-validated), refusals, reconnection."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import pytest
from slixmpp.exceptions import IqError

from tests.conftest import make_vtn
from tests.xmpp_server import ProsodyServer
from tests.xmpp_support import prosody, ven_link, xmpp_config
from vtn.app import Vtn
from vtn.codec import messages as m
from vtn.config import Config
from vtn.transports.xmpp import XmppTransport
from vtn.transports.xmpp_binding import OADR_NS

__all__ = ["prosody"]


@pytest.fixture
async def xmpp_vtn(config: Config,
                   prosody: ProsodyServer) -> AsyncIterator[tuple[Vtn, XmppTransport]]:
    vtn = make_vtn(config)
    await vtn.start()
    transport = XmppTransport(vtn.engine, xmpp_config(prosody))
    assert await transport.start(10)
    yield vtn, transport
    await transport.stop()
    await vtn.stop()


async def test_query_registration_over_xmpp(xmpp_vtn: tuple[Vtn, XmppTransport],
                                            prosody: ProsodyServer) -> None:
    link = await ven_link(prosody)
    try:
        reply = await link.send("EiRegisterParty", m.QueryRegistration("q-1"))
    finally:
        await link.close()
    assert isinstance(reply, m.CreatedPartyRegistration)
    assert reply.response.code == m.OK and reply.response.request_id == "q-1"
    assert link.stats.errors == {}


async def test_registration_naming_another_jid_is_refused(
        xmpp_vtn: tuple[Vtn, XmppTransport], prosody: ProsodyServer) -> None:
    """The VTN delivers to the registered address: a VEN may only register its own JID."""
    vtn, _ = xmpp_vtn
    link = await ven_link(prosody)
    try:
        body = m.CreatePartyRegistration("r-1", transport_name="xmpp", ven_name="mallory",
                                         transport_address="victim@localhost/ven",
                                         http_pull_model=None)
        link._outbound = lambda msg: msg  # type: ignore[method-assign] # send it as it is
        reply = await link.send("EiRegisterParty", body)
    finally:
        await link.close()
    assert isinstance(reply, m.CreatedPartyRegistration)
    assert reply.response.code == m.NOT_ALLOWED
    assert "not the JID" in reply.response.description
    assert await vtn.store.find_ven_by_name("mallory") is None


@pytest.mark.parametrize(("address", "why"), [
    ("not a jid@@/", "not a JID"), (None, "full JID"), ("{me}", "full JID")])
async def test_registration_without_its_own_full_jid_is_refused(
        xmpp_vtn: tuple[Vtn, XmppTransport], prosody: ProsodyServer, address: str | None,
        why: str) -> None:
    link = await ven_link(prosody)
    try:
        if address == "{me}":
            address = link.client.boundjid.bare  # bare: deliveries would go nowhere
        body = m.CreatePartyRegistration("r-2", transport_name="xmpp", ven_name="no-jid",
                                         transport_address=address, http_pull_model=None)
        link._outbound = lambda msg: msg  # type: ignore[method-assign]
        reply = await link.send("EiRegisterParty", body)
    finally:
        await link.close()
    assert isinstance(reply, m.CreatedPartyRegistration)
    assert reply.response.code == m.NOT_ALLOWED and why in reply.response.description


async def test_a_payload_that_is_no_openadr_message_gets_an_iq_error(
        xmpp_vtn: tuple[Vtn, XmppTransport], prosody: ProsodyServer) -> None:
    link = await ven_link(prosody)
    try:
        payload = ET.Element(f"{{{OADR_NS}}}oadrPayload")
        ET.SubElement(ET.SubElement(payload, f"{{{OADR_NS}}}oadrSignedObject"),
                      f"{{{OADR_NS}}}oadrSomethingElse")
        iq = link.client.make_iq_set(ito=link.vtn_jid)
        iq.append(payload)
        with pytest.raises(IqError) as caught:
            await iq.send(timeout=5)
    finally:
        await link.close()
    assert caught.value.condition == "bad-request"
