"""TLS for the simulator: verify the VTN, present client certificates.

Every simulated VEN presents a client certificate, either one shared pair
(``--cert``/``--key``) or its own from ``--cert-dir`` (``DIR/ven-NAME.pem`` + ``.key``,
the layout of ``vtn certs ven NAME``). Missing per-VEN certificates can be issued by a
development CA (``--issue-from``). A VTN binds one certificate fingerprint per VEN, so
per-VEN certificates are what a fleet needs; a shared certificate suits a single VEN
or a VTN that does not bind fingerprints.

One ``ssl.SSLContext`` exists per certificate, created at the VEN's first request and
kept: aiohttp pools connections per context, so a connection made with one VEN's
certificate is never reused for another VEN's request.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vtn.security.certs import CA_CERT, CA_KEY, fingerprint_pem, new_key
from vtn.security.tls import DEFAULT_CIPHERS


class TlsError(ValueError):
    """Unusable TLS options or certificate files (reported before the fleet starts)."""


@dataclass
class TlsOptions:
    """The TLS part of ``ven-sim run``; all None: plain HTTP (or https with system trust)."""

    ca_file: Path | None = None  # CA bundle the VTN's certificate must chain to
    cert_file: Path | None = None  # one client certificate for every VEN
    key_file: Path | None = None  # its key (None: in cert_file)
    cert_dir: Path | None = None  # per-VEN certificates DIR/ven-NAME.pem + .key
    issue_from: Path | None = None  # dev CA dir (ca.pem + ca.key) issuing missing ones

    @property
    def client_certs(self) -> bool:
        return self.cert_file is not None or self.cert_dir is not None

    @property
    def any(self) -> bool:
        return self.ca_file is not None or self.client_certs

    def check(self, vtn_url: str) -> None:
        if self.cert_file is not None and self.cert_dir is not None:
            raise TlsError("use either --cert/--key (one certificate) or --cert-dir (per VEN)")
        if self.key_file is not None and self.cert_file is None:
            raise TlsError("--key needs --cert")
        if self.issue_from is not None and self.cert_dir is None:
            raise TlsError("--issue-from needs --cert-dir (where the issued certificates go)")
        if self.any and not vtn_url.lower().startswith("https://"):
            raise TlsError("TLS options need an https:// VTN URL")
        for label, path in (("--ca", self.ca_file), ("--cert", self.cert_file),
                            ("--key", self.key_file)):
            if path is not None and not path.is_file():
                raise TlsError(f"{label} {path}: no such file")


@dataclass(frozen=True, slots=True)
class CertPair:
    cert: Path
    key: Path | None


def ven_cert_paths(cert_dir: Path, name: str) -> CertPair:
    """Where ``vtn certs ven NAME --out DIR`` writes a VEN's certificate and key."""
    return CertPair(cert_dir / f"ven-{name}.pem", cert_dir / f"ven-{name}.key")


class Issuer:
    """Issues VEN client certificates like ``vtn certs ven``, from a CA held in memory."""

    def __init__(self, ca_dir: Path) -> None:
        try:
            self.cert = x509.load_pem_x509_certificate((ca_dir / CA_CERT).read_bytes())
            key = serialization.load_pem_private_key((ca_dir / CA_KEY).read_bytes(),
                                                     password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise TlsError(f"--issue-from {ca_dir}: no usable {CA_CERT} + {CA_KEY} "
                           f"({exc}); `vtn certs init --out {ca_dir}` creates them") from None
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise TlsError(f"--issue-from {ca_dir}: the CA key must be RSA or ECDSA")
        self.key = key

    def issue(self, name: str, pair: CertPair, days: int = 825) -> None:
        key = new_key("ecdsa")
        now = datetime.now(UTC)
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "oadr-vtn development"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        assert pair.key is not None
        pair.key.parent.mkdir(parents=True, exist_ok=True)
        # the key is created 0600 before any secret is written to it
        pair.key.touch(mode=0o600, exist_ok=True)
        pair.key.chmod(0o600)
        pair.key.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class ClientTls:
    """The fleet's client-side TLS: which certificate each VEN presents, one context each.

    ``prepare`` checks (and with ``issue_from`` creates) every certificate file up front,
    so a missing file stops the run before any traffic; contexts are built lazily.
    """

    def __init__(self, options: TlsOptions, names: list[str]) -> None:
        self.options = options
        self.names = names
        self.issued = 0
        self._cadata: str | None = None
        self._shared: ssl.SSLContext | None = None
        self._contexts: list[ssl.SSLContext | None] = []

    def prepare(self) -> None:
        o = self.options
        if o.ca_file is not None:
            try:
                self._cadata = o.ca_file.read_text()
                ssl.create_default_context(cadata=self._cadata)
            except (OSError, ValueError, ssl.SSLError) as exc:
                raise TlsError(f"--ca {o.ca_file}: not a PEM CA bundle ({exc})") from None
        if o.cert_dir is None:
            return
        issuer = Issuer(o.issue_from) if o.issue_from is not None else None
        missing = []
        for name in self.names:
            pair = ven_cert_paths(o.cert_dir, name)
            if pair.cert.is_file() and pair.key is not None and pair.key.is_file():
                continue
            if issuer is None:
                missing.append(name)
                continue
            issuer.issue(name, pair)
            self.issued += 1
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise TlsError(
                f"--cert-dir {o.cert_dir}: no certificate for {missing[0]}{more} "
                f"(expected {ven_cert_paths(o.cert_dir, missing[0]).cert.name} + .key; "
                "--issue-from CA_DIR creates missing ones)"
            )
        self._contexts = [None] * len(self.names)

    def _context(self, pair: CertPair | None) -> ssl.SSLContext:
        # no --ca: the system's trust store
        ctx = ssl.create_default_context(cadata=self._cadata) if self._cadata else (
            ssl.create_default_context())
        # a strict 2.0b VTN may offer only the two suites OpenADR mandates
        ctx.set_ciphers(f"{DEFAULT_CIPHERS}:@SECLEVEL=1")
        if pair is not None:
            try:
                ctx.load_cert_chain(pair.cert, pair.key)
            except (OSError, ssl.SSLError) as exc:
                raise TlsError(f"client certificate {pair.cert}: {exc}") from None
        return ctx

    def pair(self, i: int) -> CertPair | None:
        """The certificate VEN ``i`` presents (None: none)."""
        o = self.options
        if o.cert_dir is not None:
            return ven_cert_paths(o.cert_dir, self.names[i])
        if o.cert_file is not None:
            return CertPair(o.cert_file, o.key_file)
        return None

    @property
    def per_ven(self) -> bool:
        return self.options.cert_dir is not None

    def shared(self) -> ssl.SSLContext:
        """The context of every VEN when they share one certificate (or none)."""
        if self._shared is None:
            self._shared = self._context(self.pair(0) if not self.per_ven else None)
        return self._shared

    def context(self, i: int) -> ssl.SSLContext:
        """VEN ``i``'s context, built at its first use and kept."""
        if not self.per_ven:
            return self.shared()
        ctx = self._contexts[i]
        if ctx is None:
            ctx = self._contexts[i] = self._context(self.pair(i))
        return ctx

    def fingerprint(self, i: int) -> str | None:
        """The OpenADR fingerprint VEN ``i`` presents."""
        pair = self.pair(i)
        return fingerprint_pem(pair.cert.read_bytes()) if pair is not None else None
