"""Test support for mutual TLS: a development PKI and a VTN served over HTTPS."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import Served, make_vtn
from vtn.config import Config
from vtn.security import certs
from vtn.security.tls import server_context
from vtn.transports.site import HttpSite


@dataclass
class Pki:
    dir: Path
    ca: certs.Issued
    vtn: certs.Issued
    vens: dict[str, certs.Issued]


def make_pki(out: Path, ven_names: tuple[str, ...] = ("osb-a", "osb-b")) -> Pki:
    ca, vtn = certs.init(out, "ecdsa")
    vens = {name: certs.issue_ven(out, name) for name in ven_names}
    return Pki(out, ca, vtn, vens)


def tls_config(config: Config, pki: Pki) -> Config:
    config.tls.enabled = True
    config.tls.cert_file = str(pki.vtn.cert_path)
    config.tls.key_file = str(pki.vtn.key_path)
    config.tls.client_ca_file = str(pki.ca.cert_path)
    return config


async def serve_tls(config: Config) -> Served:
    """Like tests.conftest.serve, over HTTPS with client certificates required."""
    v = make_vtn(config)
    site = HttpSite(v, "127.0.0.1", config.http.port, ssl_context=server_context(config.tls))
    await site.start()
    return Served(v, f"https://localhost:{config.http.port}/OpenADR2/Simple/2.0b", site)


def client_context(pki: Pki, ven: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca.cert_path))
    if ven is not None:
        issued = pki.vens[ven]
        ctx.load_cert_chain(str(issued.cert_path), str(issued.key_path))
    return ctx
