"""XML signatures with ReplayProtect: openleadr's signing client over mutual TLS, and
every way a message from a signing VEN can be wrong."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from lxml import etree
from openleadr import OpenADRClient
from openleadr.messaging import create_message, validate_xml_signature

from tests.conftest import Served
from tests.security_support import Pki, client_context, make_pki, serve_tls, tls_config
from tests.test_interop_openleadr import eventually, fast, make_client
from vtn.codec import decode, encode
from vtn.codec import messages as m
from vtn.config import Config
from vtn.security.signatures import SignatureError, Signer, verify
from vtn.services.admin import provision_ven

XML = {"Content-Type": "application/xml"}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "certs")


def signer(pki: Pki, ven: str) -> Signer:
    issued = pki.vens[ven]
    return Signer.from_files(issued.cert_path, issued.key_path)


@pytest.fixture
async def served_tls(config: Config, pki: Pki) -> AsyncIterator[Served]:
    s = await serve_tls(tls_config(config, pki))
    yield s
    await s.stop()


async def post(served: Served, pki: Pki, ven: str, service: str, body: bytes) -> bytes:
    connector = aiohttp.TCPConnector(ssl=client_context(pki, ven))
    async with (
        aiohttp.ClientSession(connector=connector) as s,
        s.post(f"{served.url}/{service}", data=body, headers=XML) as r,
    ):
        assert r.status == 200
        return await r.read()


async def signing_ven(served: Served, pki: Pki, name: str = "osb-a") -> str:
    """Provision and register ``name`` with oadrXmlSignature=true (signed, over TLS)."""
    await provision_ven(served.vtn.ctx, name=name, fingerprint=pki.vens[name].fingerprint)
    msg = m.CreatePartyRegistration(request_id="r1", ven_name=name, xml_signature=True)
    body = await post(served, pki, name, "EiRegisterParty", signer(pki, name).sign(encode(msg)))
    reply = decode(body)
    assert isinstance(reply, m.CreatedPartyRegistration) and reply.response.code == 200
    verify(body, pki.vtn.fingerprint)  # the VTN signed its answer
    assert reply.ven_id is not None
    return reply.ven_id


def code_of(body: bytes) -> int:
    return decode(body).response.code  # type: ignore[attr-defined, no-any-return]


def test_our_signatures_and_signxml_signatures_interoperate(pki: Pki) -> None:
    a = pki.vens["osb-a"]
    ours = signer(pki, "osb-a").sign(encode(m.Poll(ven_id="v1")))
    validate_xml_signature(etree.fromstring(ours), cert_fingerprint=a.fingerprint)  # signxml
    theirs = create_message(
        "oadrPoll", ven_id="v1", cert=a.cert_path.read_bytes(), key=a.key_path.read_bytes()
    ).encode()
    assert verify(theirs, a.fingerprint).fingerprint == a.fingerprint
    assert isinstance(decode(theirs), m.Poll)
    for bad, why in (
        (ours.replace(b">v1<", b">v2<"), "digest"),
        (theirs, "another certificate"),
        (ours.replace(b"<ds:SignatureValue>", b"<ds:SignatureValue>AAAA"), "SignatureValue"),
    ):
        with pytest.raises(SignatureError, match=why):
            verify(bad, pki.vens["osb-b"].fingerprint if bad is theirs else a.fingerprint)
    # wrapping: a second signed object next to the verified one is refused outright
    wrapped = ours.replace(
        b"</oadr:oadrPayload>",
        b'<oadr:oadrSignedObject oadr:Id="x"><oadr:oadrPoll/></oadr:oadrSignedObject>'
        b"</oadr:oadrPayload>",
    )
    with pytest.raises(SignatureError, match="one ds:Signature"):
        verify(wrapped, a.fingerprint)


async def test_openleadr_signing_client_registers_and_reports_over_tls(
    config: Config, pki: Pki
) -> None:
    logging.getLogger("openleadr").setLevel(logging.ERROR)
    served = await serve_tls(fast(tls_config(config, pki)))
    a = pki.vens["osb-a"]
    ven = await provision_ven(served.vtn.ctx, name="osb-a", fingerprint=a.fingerprint)
    client = OpenADRClient(
        ven_name="osb-a", vtn_url=served.url, cert=str(a.cert_path), key=str(a.key_path),
        ca_file=str(pki.ca.cert_path), vtn_fingerprint=pki.vtn.fingerprint,
        show_fingerprint=False,
    )
    reference = make_client(served.url, "osb-a")  # same reports as the unsigned interop test
    client.reports, client.report_callbacks = reference.reports, reference.report_callbacks
    client.create_party_registration = functools.partial(  # type: ignore[method-assign]
        client.create_party_registration, xml_signature=True
    )
    received: list[str] = []
    client.hooks["after_receive_xml"].append(received.append)
    await client.run()
    try:
        store = served.vtn.store

        async def ders_with_values() -> bool:
            ders = await store.ders_of_ven(ven.ven_id)
            return len(ders) == 2 and all(d.last_values for d in ders)

        await eventually(ders_with_values)
        registered = await store.get_ven(ven.ven_id)
        assert registered is not None and registered.xml_signature
        assert registered.fingerprint == a.fingerprint
        # every answer (registration, reports, polls, outbox) carried our signature
        assert len(received) >= 4
        for body in received:
            verify(body.encode(), pki.vtn.fingerprint)
        entries = await store.read_log(limit=1000, ven_id=ven.ven_id)
        assert not [e for e in entries if e.kind.startswith("security.")]
    finally:
        await client.stop()
        await served.stop()


async def test_unsigned_replayed_stale_and_foreign_signatures_are_refused(
    served_tls: Served, pki: Pki
) -> None:
    ven_id = await signing_ven(served_tls, pki)
    sign_a = signer(pki, "osb-a")
    poll = encode(m.Poll(ven_id=ven_id))

    # unsigned
    assert code_of(await post(served_tls, pki, "osb-a", "OadrPoll", poll)) == 463
    # properly signed: accepted (the VTN's oadrRegisterReport from the outbox, signed)
    signed = sign_a.sign(poll)
    reply = await post(served_tls, pki, "osb-a", "OadrPoll", signed)
    assert isinstance(decode(reply), m.RegisterReport)
    verify(reply, pki.vtn.fingerprint)
    # the same bytes again: replay
    assert code_of(await post(served_tls, pki, "osb-a", "OadrPoll", signed)) == 463
    # too old / from the future
    window = served_tls.vtn.config.signatures.replay_window_s
    for skew in (-window - 5, window + 5):
        at = datetime.now(UTC) + timedelta(seconds=skew)
        old = sign_a.sign(poll, now=at)
        assert code_of(await post(served_tls, pki, "osb-a", "OadrPoll", old)) == 463
    # signed with B's key over A's TLS connection
    foreign = signer(pki, "osb-b").sign(poll)
    assert code_of(await post(served_tls, pki, "osb-a", "OadrPoll", foreign)) == 463
    # tampered after signing
    tampered = sign_a.sign(encode(m.RequestEvent(request_id="e1", ven_id=ven_id))).replace(
        b">e1<", b">e2<"
    )
    reply = await post(served_tls, pki, "osb-a", "EiEvent", tampered)
    assert isinstance(decode(reply), m.DistributeEvent) and code_of(reply) == 463
    # refusals are answered signed (the VEN checks them) and logged
    verify(reply, pki.vtn.fingerprint)
    entries = await served_tls.vtn.store.read_log(limit=1000, ven_id=ven_id)
    reasons = [e.data["reason"] for e in entries if e.kind == "security.signature_refused"]
    assert len(reasons) == 6
    assert any("nonce" in r for r in reasons) and any("must sign" in r for r in reasons)
    # and a fresh signed poll still works
    reply = await post(served_tls, pki, "osb-a", "OadrPoll", sign_a.sign(poll))
    assert code_of(reply) == 200


async def test_another_vens_certificate_on_a_signing_ven_is_463(
    served_tls: Served, pki: Pki
) -> None:
    ven_id = await signing_ven(served_tls, pki)
    await provision_ven(served_tls.vtn.ctx, name="osb-b", fingerprint=pki.vens["osb-b"].fingerprint)
    body = signer(pki, "osb-b").sign(encode(m.Poll(ven_id=ven_id)))
    assert code_of(await post(served_tls, pki, "osb-b", "OadrPoll", body)) == 463
    entries = await served_tls.vtn.store.read_log(limit=1000, ven_id=ven_id)
    assert [e.kind for e in entries].count("security.fingerprint_mismatch") == 1


async def test_two_vtn_processes_on_one_store_agree_on_nonces(
    config: Config, pki: Pki, tmp_path: Path
) -> None:
    from tests.conftest import free_port

    first = await serve_tls(tls_config(config, pki))
    second_config = config.model_copy(deep=True)
    second_config.http.port = free_port()
    second = await serve_tls(second_config)
    try:
        ven_id = await signing_ven(first, pki)
        signed = signer(pki, "osb-a").sign(encode(m.Poll(ven_id=ven_id)))
        assert isinstance(decode(await post(first, pki, "osb-a", "OadrPoll", signed)),
                          m.RegisterReport)
        assert code_of(await post(second, pki, "osb-a", "OadrPoll", signed)) == 463
    finally:
        await second.stop()
        await first.stop()


async def test_unsigned_vens_are_unaffected_on_a_signing_vtn(served_tls: Served, pki: Pki) -> None:
    await provision_ven(served_tls.vtn.ctx, name="osb-b", fingerprint=pki.vens["osb-b"].fingerprint)
    body = await post(served_tls, pki, "osb-b", "EiRegisterParty",
                      encode(m.CreatePartyRegistration(request_id="r1", ven_name="osb-b")))
    assert code_of(body) == 200 and b"xmldsig" not in body
    ven_id = decode(body).ven_id  # type: ignore[attr-defined]
    body = await post(served_tls, pki, "osb-b", "OadrPoll", encode(m.Poll(ven_id=ven_id)))
    assert isinstance(decode(body), m.RegisterReport) and b"xmldsig" not in body


async def test_asking_for_signatures_without_a_vtn_key_is_refused(served: Served) -> None:
    from tests.oadr import call

    await provision_ven(served.vtn.ctx, name="osb-x")
    reply = await call(served.vtn, "EiRegisterParty", m.CreatePartyRegistration(
        request_id="r1", ven_name="osb-x", xml_signature=True))
    assert reply.response.code == m.NOT_ALLOWED  # type: ignore[attr-defined]
