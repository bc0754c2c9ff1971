"""Server-side TLS: the ``ssl.SSLContext`` for mutual TLS, and the peer's fingerprint.

OpenADR 2.0b mandates two TLS 1.2 suites that OpenSSL 3 leaves out of its defaults
(CBC with SHA-256), so they are named explicitly next to the modern AEAD suites.
"""

from __future__ import annotations

import ipaddress
import ssl
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from vtn.config import TlsConfig
from vtn.security.certs import fingerprint_der

# TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 and TLS_RSA_WITH_AES_128_CBC_SHA256 (OpenADR 2.0b)
OPENADR_CIPHERS = "ECDHE-ECDSA-AES128-SHA256:AES128-SHA256"
MODERN_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
DEFAULT_CIPHERS = f"{MODERN_CIPHERS}:{OPENADR_CIPHERS}"


def server_context(cfg: TlsConfig) -> ssl.SSLContext:
    """The listening socket's context: our certificate, client certificates from the CA."""
    if not cfg.cert_file or not cfg.key_file:
        raise ValueError("[tls] enabled needs cert_file and key_file")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if cfg.min_version == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
    )
    # @SECLEVEL=1 keeps the OpenADR CBC-SHA256 suites usable under OpenSSL 3 policies
    ctx.set_ciphers(cfg.ciphers or f"{DEFAULT_CIPHERS}:@SECLEVEL=1")
    ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    if cfg.client_ca_file:
        ctx.load_verify_locations(cfg.client_ca_file)
        ctx.verify_mode = ssl.CERT_REQUIRED if cfg.require_client_cert else ssl.CERT_OPTIONAL
    elif cfg.require_client_cert:
        raise ValueError("[tls] require_client_cert needs client_ca_file")
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def peer_der(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bytes | None:
    """The verified client certificate of a TLS connection (DER), if one was presented."""
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True) or None


def header_der(value: str) -> bytes | None:
    """A client certificate forwarded by a proxy as URL-encoded PEM (nginx
    ``$ssl_client_escaped_cert``); None if it is not a certificate."""
    pem = unquote(value).strip()
    if not pem.startswith("-----BEGIN CERTIFICATE-----"):
        return None
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None
    return cert.public_bytes(serialization.Encoding.DER)


class TrustedProxies:
    """Addresses/networks whose client-certificate header is believed."""

    def __init__(self, entries: list[str]) -> None:
        self.networks = [ipaddress.ip_network(e, strict=False) for e in entries]

    def __contains__(self, address: str | None) -> bool:
        if not address or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)


def proxied_fingerprint(
    remote: str | None, header_value: str | None, proxies: TrustedProxies
) -> str | None:
    """The certificate a trusted TLS-terminating proxy passed on in its header."""
    if header_value and remote in proxies:
        return fingerprint_of(header_der(header_value))
    return None


def fingerprint_of(der: bytes | None) -> str | None:
    return fingerprint_der(der) if der else None
