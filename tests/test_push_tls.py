"""HTTP push over mutual TLS: the VTN presents its client certificate and pushes only to
a VEN whose server certificate chains to the configured CA."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import make_vtn
from tests.push_support import PushVen, allow_loopback_push
from tests.security_support import make_pki
from tests.test_interop_openleadr import eventually
from tests.test_push import register_push
from vtn.app import Vtn
from vtn.config import Config
from vtn.security import certs


def ven_server_context(out: Path, ca: Path) -> ssl.SSLContext:
    issued = certs.issue(out, "ven-server", "127.0.0.1", server=True, hosts=("127.0.0.1",))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(issued.cert_path), str(issued.key_path))
    ctx.load_verify_locations(str(ca))
    ctx.verify_mode = ssl.CERT_REQUIRED  # the VEN wants the VTN's client certificate
    return ctx


@pytest.fixture
async def tls_pushing(config: Config, tmp_path: Path) -> AsyncIterator[tuple[Vtn, Path]]:
    pki = make_pki(tmp_path / "pki")
    client = certs.issue_ven(pki.dir, "vtn-push")  # a client (clientAuth) certificate
    allow_loopback_push(config)
    config.push.allowed_schemes = ["https"]
    config.push.client_cert_file = str(client.cert_path)
    config.push.client_key_file = str(client.key_path)
    config.push.ca_file = str(pki.ca.cert_path)
    vtn = make_vtn(config, run_jobs=True)
    await vtn.start()
    yield vtn, pki.dir
    await vtn.stop()


async def test_push_uses_mutual_tls_and_verifies_the_ven(
    tls_pushing: tuple[Vtn, Path], tmp_path: Path,
) -> None:
    vtn, pki_dir = tls_pushing
    good = PushVen(tls=ven_server_context(pki_dir, pki_dir / "ca.pem"))
    await good.start()
    try:
        await register_push(vtn, good, "tls-1")
        await good.wait_for(lambda: good.kinds("tls-1") == ["oadrRegisterReport"])
        subject = dict(x[0] for x in good.peers[0]["subject"])
        assert subject["commonName"] == "vtn-push"  # the VTN showed its certificate
    finally:
        await good.stop()
    # a VEN whose certificate another CA signed is not pushed to
    other = tmp_path / "other"
    certs.create_ca(other)
    rogue = PushVen(tls=ven_server_context(other, other / "ca.pem"))
    await rogue.start()
    try:
        ven_id = await register_push(vtn, rogue, "tls-2")
        drainer = vtn.push
        assert drainer is not None
        failed = drainer.failures

        async def refused() -> bool:
            return drainer.failures >= failed + 2
        await eventually(refused)
        assert rogue.received == {} and await vtn.store.pending_count(ven_id) == 1
    finally:
        await rogue.stop()
