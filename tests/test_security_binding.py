"""A VEN bound to a certificate fails closed: no certificate, a header that is not
believed, or another VEN's certificate is refused with 463, and the attempt is logged
under the VEN that was targeted, where its own tenant sees it (side API). A signing
VEN's oadrXmlSignature requirement cannot be switched off by naming it without a venID."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from registry.api.auth import issue_token
from tests.conftest import Served, serve
from tests.security_support import Pki, client_context, make_pki, serve_tls, tls_config
from vtn.codec import decode, encode
from vtn.codec import messages as m
from vtn.config import Config
from vtn.security.signatures import Signer
from vtn.services.admin import provision_ven

XML = {"Content-Type": "application/xml"}
MISMATCH = "security.fingerprint_mismatch"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "certs")


async def post(url: str, msg: m.Message | bytes, ctx: ssl.SSLContext | None = None,
               headers: dict[str, str] | None = None) -> Any:
    body = msg if isinstance(msg, bytes) else encode(msg)
    connector = aiohttp.TCPConnector(ssl=ctx) if ctx else None
    async with (
        aiohttp.ClientSession(connector=connector) as s,
        s.post(url, data=body, headers={**XML, **(headers or {})}) as r,
    ):
        assert r.status == 200
        return decode(await r.read())


async def tenant_events(served: Served, ctx: ssl.SSLContext | None, account: str) -> list[Any]:
    """What the prosumer of ``account`` reads from the side API's event log."""
    token = issue_token(served.vtn.config, "prosumer", account_id=account)
    base = served.url.split("/OpenADR2")[0]
    connector = aiohttp.TCPConnector(ssl=ctx) if ctx else None
    async with (
        aiohttp.ClientSession(connector=connector) as s,
        s.get(f"{base}/api/v1/log?kind={MISMATCH}",
              headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 200
        return (await r.json())["items"]  # type: ignore[no-any-return]


async def test_no_client_certificate_cannot_take_over_a_bound_ven(
    config: Config, pki: Pki
) -> None:
    config.tls.require_client_cert = False  # certificates optional on the TLS port
    served = await serve_tls(tls_config(config, pki))
    try:
        a = pki.vens["osb-a"]
        ven = await provision_ven(served.vtn.ctx, name="osb-a", account_id="acct-a",
                                  fingerprint=a.fingerprint)
        own, anonymous = client_context(pki, "osb-a"), client_context(pki, None)
        reply = await post(f"{served.url}/EiRegisterParty",
                           m.CreatePartyRegistration(request_id="r1", ven_name="osb-a"), own)
        assert reply.response.code == 200
        registration_id = reply.registration_id
        # a client with no certificate: registration by name, by venID, polls, events
        for service, msg in (
            ("EiRegisterParty", m.CreatePartyRegistration(request_id="r2", ven_name="osb-a")),
            ("EiRegisterParty", m.CreatePartyRegistration(request_id="r3", ven_id=ven.ven_id)),
            ("OadrPoll", m.Poll(ven_id=ven.ven_id)),
            ("EiEvent", m.RequestEvent(request_id="e", ven_id=ven.ven_id)),
        ):
            reply = await post(f"{served.url}/{service}", msg, anonymous)
            assert reply.response.code == m.NOT_REGISTERED_OR_AUTHORIZED, service
        stored = await served.vtn.store.get_ven(ven.ven_id)
        assert stored is not None and stored.registration_id == registration_id  # not taken
        # the outbox was not drained: A's own poll still gets its oadrRegisterReport
        reply = await post(f"{served.url}/OadrPoll", m.Poll(ven_id=ven.ven_id), own)
        assert isinstance(reply, m.RegisterReport)
        # A's tenant sees the four attempts; another tenant sees none
        seen = await tenant_events(served, own, "acct-a")
        assert len(seen) == 4
        assert all(e["ven_id"] == ven.ven_id and e["account_id"] == "acct-a" for e in seen)
        assert all(e["data"] == {"presented": None, "expected": a.fingerprint} for e in seen)
        assert await tenant_events(served, own, "acct-b") == []
    finally:
        await served.stop()


async def test_a_proxy_header_from_an_untrusted_address_is_no_certificate(
    config: Config, pki: Pki
) -> None:
    a = pki.vens["osb-a"]
    config.tls.client_cert_header = "X-SSL-Client-Cert"
    config.tls.trusted_proxies = ["10.0.0.1"]  # not loopback: the header is not believed
    served = await serve(config)
    try:
        ven = await provision_ven(served.vtn.ctx, name="osb-a", account_id="acct-a",
                                  fingerprint=a.fingerprint)
        header = {"X-SSL-Client-Cert": quote(a.cert_path.read_text())}
        reply = await post(f"{served.url}/EiRegisterParty",
                           m.CreatePartyRegistration(request_id="r1", ven_name="osb-a"),
                           headers=header)
        assert reply.response.code == m.NOT_REGISTERED_OR_AUTHORIZED
        stored = await served.vtn.store.get_ven(ven.ven_id)
        assert stored is not None and not stored.registered
        seen = await tenant_events(served, None, "acct-a")
        assert [e["data"]["presented"] for e in seen] == [None]
    finally:
        await served.stop()


async def test_another_vens_certificate_by_name_is_logged_under_the_targeted_ven(
    config: Config, pki: Pki
) -> None:
    served = await serve_tls(tls_config(config, pki))
    try:
        a, b = pki.vens["osb-a"], pki.vens["osb-b"]
        ven_a = await provision_ven(served.vtn.ctx, name="osb-a", account_id="acct-a",
                                    fingerprint=a.fingerprint)
        await provision_ven(served.vtn.ctx, name="osb-b", account_id="acct-b",
                            fingerprint=b.fingerprint)
        reply = await post(f"{served.url}/EiRegisterParty",
                           m.CreatePartyRegistration(request_id="r1", ven_name="osb-a"),
                           client_context(pki, "osb-b"))
        assert reply.response.code == m.NOT_REGISTERED_OR_AUTHORIZED
        seen = await tenant_events(served, client_context(pki, "osb-a"), "acct-a")
        assert len(seen) == 1 and seen[0]["ven_id"] == ven_a.ven_id
        assert seen[0]["data"] == {"presented": b.fingerprint, "expected": a.fingerprint}
    finally:
        await served.stop()


async def test_an_unsigned_registration_by_name_cannot_drop_the_signature_requirement(
    config: Config, pki: Pki
) -> None:
    served = await serve_tls(tls_config(config, pki))
    try:
        a = pki.vens["osb-a"]
        ven = await provision_ven(served.vtn.ctx, name="osb-a", fingerprint=a.fingerprint)
        ctx = client_context(pki, "osb-a")
        signer = Signer.from_files(a.cert_path, a.key_path)
        signed = signer.sign(encode(m.CreatePartyRegistration(
            request_id="r1", ven_name="osb-a", xml_signature=True)))
        assert (await post(f"{served.url}/EiRegisterParty", signed, ctx)).response.code == 200
        # unsigned, oadrVenName only, oadrXmlSignature false
        unsigned = m.CreatePartyRegistration(request_id="r2", ven_name="osb-a",
                                             xml_signature=False)
        reply = await post(f"{served.url}/EiRegisterParty", unsigned, ctx)
        assert reply.response.code == m.NOT_REGISTERED_OR_AUTHORIZED
        stored = await served.vtn.store.get_ven(ven.ven_id)
        assert stored is not None and stored.xml_signature
        reply = await post(f"{served.url}/OadrPoll", m.Poll(ven_id=ven.ven_id), ctx)
        assert reply.response.code == m.NOT_REGISTERED_OR_AUTHORIZED  # still must sign
    finally:
        await served.stop()


