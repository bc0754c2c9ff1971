"""Mutual TLS: certificate tooling, client certificates required, fingerprints bound to VENs."""

from __future__ import annotations

import asyncio
import logging
import ssl
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from click.testing import CliRunner
from cryptography import x509
from openleadr.utils import certificate_fingerprint

from tests.conftest import Served, serve
from tests.security_support import Pki, client_context, make_pki, serve_tls, tls_config
from tests.test_interop_openleadr import eventually, fast, make_client
from vtn.cli import main
from vtn.codec import decode, encode
from vtn.codec import messages as m
from vtn.config import Config
from vtn.security import certs
from vtn.security.tls import server_context
from vtn.services.admin import provision_ven

XML = {"Content-Type": "application/xml"}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "certs")


@pytest.fixture
async def served_tls(config: Config, pki: Pki) -> AsyncIterator[Served]:
    s = await serve_tls(tls_config(config, pki))
    yield s
    await s.stop()


async def post(
    url: str, body: bytes, ctx: ssl.SSLContext | None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connector = aiohttp.TCPConnector(ssl=ctx) if ctx else None
    async with (
        aiohttp.ClientSession(connector=connector) as s,
        s.post(url, data=body, headers={**XML, **(headers or {})}) as r,
    ):
        return r.status, await r.read()


def test_certs_cli_creates_ca_server_and_ven_certificates(tmp_path: Path) -> None:
    out = tmp_path / "c"
    runner = CliRunner()
    result = runner.invoke(main, ["certs", "init", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for key_type in ("rsa", "ecdsa"):
        result = runner.invoke(
            main, ["certs", "ven", f"osb-{key_type}", "--out", str(out), "--key-type", key_type]
        )
        assert result.exit_code == 0, result.output
        pem = (out / f"ven-osb-{key_type}.pem").read_text()
        # our fingerprint is the one openleadr (and every OpenADR VEN) computes
        assert certificate_fingerprint(pem) in result.output
        assert certs.fingerprint_pem(pem) == certificate_fingerprint(pem)
    assert (out / "ven-osb-rsa.key").stat().st_mode & 0o077 == 0
    vtn = x509.load_pem_x509_certificate((out / "vtn.pem").read_bytes())
    san = vtn.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    # a second init does not silently replace the CA
    assert runner.invoke(main, ["certs", "init", "--out", str(out)]).exit_code != 0


async def test_openleadr_client_with_certificate_registers_and_reports_over_tls(
    config: Config, pki: Pki
) -> None:
    logging.getLogger("openleadr").setLevel(logging.ERROR)
    served = await serve_tls(fast(tls_config(config, pki)))
    a = pki.vens["osb-a"]
    ven = await provision_ven(served.vtn.ctx, name="osb-a", fingerprint=a.fingerprint)
    client = make_client(served.url, "osb-a")
    client.cert_path, client.key_path, client.ca_file = str(a.cert_path), str(a.key_path), str(
        pki.ca.cert_path
    )
    await client.run()
    try:
        store = served.vtn.store

        async def ders_with_values() -> bool:
            ders = await store.ders_of_ven(ven.ven_id)
            return len(ders) == 2 and all(d.last_values for d in ders)

        await eventually(ders_with_values)
        assert client.ven_id == ven.ven_id
    finally:
        await client.stop()
        await served.stop()


async def test_openleadr_client_with_constructor_certificate_arguments(
    config: Config, pki: Pki
) -> None:
    """The documented OpenADRClient(cert=, key=, ca_file=) path; open enrollment records
    the fingerprint at first registration."""
    from openleadr import OpenADRClient

    logging.getLogger("openleadr").setLevel(logging.ERROR)
    config.registration.open_enrollment = True
    served = await serve_tls(fast(tls_config(config, pki)))
    b = pki.vens["osb-b"]
    client = OpenADRClient(
        ven_name="osb-b", vtn_url=served.url, cert=str(b.cert_path), key=str(b.key_path),
        ca_file=str(pki.ca.cert_path), show_fingerprint=False,
    )
    await client.run()
    try:
        store = served.vtn.store

        async def registered() -> bool:
            ven = await store.find_ven_by_name("osb-b")
            return ven is not None and ven.registered

        await eventually(registered)
        ven = await store.find_ven_by_name("osb-b")
        assert ven is not None and ven.fingerprint == b.fingerprint
    finally:
        await client.stop()
        await served.stop()


async def test_another_vens_certificate_is_refused_with_463_and_logged(
    served_tls: Served, pki: Pki
) -> None:
    logging.getLogger("openleadr").setLevel(logging.CRITICAL)
    vtn = served_tls.vtn
    a, b = pki.vens["osb-a"], pki.vens["osb-b"]
    ven_a = await provision_ven(vtn.ctx, name="osb-a", fingerprint=a.fingerprint)
    await provision_ven(vtn.ctx, name="osb-b", fingerprint=b.fingerprint)

    # openleadr's client, holding B's certificate, tries to register with A's venID
    client = make_client(served_tls.url, "osb-a")
    client.cert_path, client.key_path, client.ca_file = str(b.cert_path), str(b.key_path), str(
        pki.ca.cert_path
    )
    client.ven_id = ven_a.ven_id
    received: list[str] = []
    client.hooks["after_receive_xml"].append(received.append)
    await client.create_party_registration()
    await client.client_session.close()
    reply = decode(received[0].encode())
    assert isinstance(reply, m.CreatedPartyRegistration) and reply.response.code == 463
    assert not (await vtn.store.get_ven(ven_a.ven_id)).registered  # type: ignore[union-attr]

    # A registers properly; B then claims A's venID on every service
    status, body = await post(
        f"{served_tls.url}/EiRegisterParty",
        encode(m.CreatePartyRegistration(request_id="r1", ven_name="osb-a")),
        client_context(pki, "osb-a"),
    )
    reply = decode(body)
    assert status == 200 and reply.response.code == 200  # type: ignore[attr-defined]
    for service, msg, reply_type in (
        ("OadrPoll", m.Poll(ven_id=ven_a.ven_id), m.Response),
        ("EiEvent", m.RequestEvent(request_id="e1", ven_id=ven_a.ven_id), m.DistributeEvent),
        ("EiReport", m.RegisterReport(request_id="rr", reports=[], ven_id=ven_a.ven_id),
         m.RegisteredReport),
    ):
        status, body = await post(
            f"{served_tls.url}/{service}", encode(msg), client_context(pki, "osb-b")
        )
        reply = decode(body)
        assert status == 200 and isinstance(reply, reply_type)
        assert reply.response.code == 463  # type: ignore[attr-defined]
    entries = await vtn.store.read_log(limit=1000, ven_id=ven_a.ven_id)
    mismatches = [e for e in entries if e.kind == "security.fingerprint_mismatch"]
    assert len(mismatches) == 4
    assert mismatches[-1].data == {"presented": b.fingerprint, "expected": a.fingerprint}
    # A itself still polls fine
    status, body = await post(
        f"{served_tls.url}/OadrPoll", encode(m.Poll(ven_id=ven_a.ven_id)),
        client_context(pki, "osb-a"),
    )
    assert status == 200 and isinstance(decode(body), m.RegisterReport)  # from the outbox


async def test_no_client_certificate_no_connection(served_tls: Served, pki: Pki) -> None:
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await post(f"{served_tls.url}/OadrPoll", encode(m.Poll(ven_id="x")),
                   client_context(pki, None))
    with pytest.raises(aiohttp.ClientError):  # plain HTTP to the TLS port
        await post(served_tls.url.replace("https", "http") + "/OadrPoll",
                   encode(m.Poll(ven_id="x")), None)


async def handshake(port: int, ctx: ssl.SSLContext) -> tuple[str, str]:
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                              server_hostname="localhost")
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.cipher()[0], ssl_object.version()
    finally:
        writer.close()


async def test_openadr_cipher_suites_and_tls_versions(tmp_path: Path, config: Config) -> None:
    for key_type, cipher in (("ecdsa", "ECDHE-ECDSA-AES128-SHA256"), ("rsa", "AES128-SHA256")):
        out = tmp_path / key_type
        pki = Pki(out, *certs.init(out, key_type), {"v": certs.issue_ven(out, "v", key_type)})
        served = await serve_tls(tls_config(config, pki))
        try:
            ctx = client_context(pki, "v")
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(f"{cipher}:@SECLEVEL=1")
            assert await handshake(config.http.port, ctx) == (cipher, "TLSv1.2")
            # modern clients get TLS 1.3
            assert (await handshake(config.http.port, client_context(pki, "v")))[1] == "TLSv1.3"
            old = client_context(pki, "v")
            old.set_ciphers("ALL:@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await handshake(config.http.port, old)
        finally:
            await served.stop()
    cfg = config.tls.model_copy(update={"ciphers": "ECDHE+AESGCM"})
    names = {c["name"] for c in server_context(cfg).get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert names and "ECDHE-ECDSA-AES128-SHA256" not in names


async def test_client_certificate_header_only_from_trusted_proxies(
    config: Config, pki: Pki
) -> None:
    a, b = pki.vens["osb-a"], pki.vens["osb-b"]
    header = {"X-SSL-Client-Cert": quote(a.cert_path.read_text())}
    other = {"X-SSL-Client-Cert": quote(b.cert_path.read_text())}
    config.tls.client_cert_header = "X-SSL-Client-Cert"
    # from a trusted proxy the header is believed: A registers with it, and B's
    # certificate is refused for A's venID. From anyone else the header is ignored like
    # any other header, so A (bound to its certificate) is refused: no certificate.
    for trusted, expect_own, expect_other in ((["127.0.0.0/8"], 200, 463),
                                              (["10.0.0.1"], 463, 463)):
        config.tls.trusted_proxies = trusted
        served = await serve(config)
        try:
            vtn = served.vtn
            ven = await vtn.store.find_ven_by_name("osb-a") or await provision_ven(
                vtn.ctx, name="osb-a", fingerprint=a.fingerprint
            )
            status, body = await post(
                f"{served.url}/EiRegisterParty",
                encode(m.CreatePartyRegistration(request_id="r1", ven_name="osb-a")), None, header,
            )
            assert decode(body).response.code == expect_own  # type: ignore[attr-defined]
            status, body = await post(
                f"{served.url}/EiEvent", encode(m.RequestEvent(request_id="e", ven_id=ven.ven_id)),
                None, other,
            )
            assert decode(body).response.code == expect_other  # type: ignore[attr-defined]
            status, body = await post(
                f"{served.url}/EiEvent", encode(m.RequestEvent(request_id="e", ven_id=ven.ven_id)),
                None, header,
            )
            assert decode(body).response.code == (  # type: ignore[attr-defined]
                m.OK if expect_own == 200 else m.NOT_REGISTERED_OR_AUTHORIZED
            )
        finally:
            await served.stop()
