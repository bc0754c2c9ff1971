"""Development PKI: a CA, a VTN server certificate and VEN client certificates.

Only for development and tests; production deployments bring their own PKI. The OpenADR
fingerprint (what VENs and VTNs exchange out of band) is computed here as well.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vtn.security.files import write_private

KeyType = Literal["rsa", "ecdsa"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
VTN_CERT = "vtn.pem"
VTN_KEY = "vtn.key"


def fingerprint_der(der: bytes) -> str:
    """OpenADR fingerprint: last 10 bytes of SHA-256 over the DER certificate."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest()[-10:])


def fingerprint_cert(cert: x509.Certificate) -> str:
    return fingerprint_der(cert.public_bytes(serialization.Encoding.DER))


def fingerprint_pem(pem: bytes | str) -> str:
    data = pem.encode() if isinstance(pem, str) else pem
    return fingerprint_cert(x509.load_pem_x509_certificate(data))


def new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(slots=True)
class Issued:
    cert_path: Path
    key_path: Path
    fingerprint: str


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "oadr-vtn development"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _write(path: Path, data: bytes, secret: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if secret:
        write_private(path, data)  # 0600 from creation on, no chmod window
    else:
        path.write_bytes(data)


def _save(out: Path, stem: str, cert: x509.Certificate, key: PrivateKey) -> Issued:
    cert_path, key_path = out / f"{stem}.pem", out / f"{stem}.key"
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(key_path, key_pem, secret=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), secret=False)
    return Issued(cert_path, key_path, fingerprint_cert(cert))


def _builder(
    subject: x509.Name, issuer: x509.Name, key: PrivateKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
    )


def create_ca(out: Path, key_type: KeyType = "ecdsa", days: int = 3650) -> Issued:
    key = new_key(key_type)
    name = _name("oadr-vtn development CA")
    cert = (
        _builder(name, name, key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _save(out, "ca", cert, key)


def load_ca(out: Path) -> tuple[x509.Certificate, PrivateKey]:
    cert = x509.load_pem_x509_certificate((out / CA_CERT).read_bytes())
    key = serialization.load_pem_private_key((out / CA_KEY).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("CA key must be RSA or ECDSA")
    return cert, key


def issue(
    out: Path,
    stem: str,
    common_name: str,
    *,
    server: bool,
    key_type: KeyType = "ecdsa",
    hosts: tuple[str, ...] = (),
    days: int = 825,
) -> Issued:
    """Issue a leaf certificate signed by the CA in ``out``."""
    ca_cert, ca_key = load_ca(out)
    key = new_key(key_type)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(_name(common_name), ca_cert.subject, key, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return _save(out, stem, builder.sign(ca_key, hashes.SHA256()), key)


def init(out: Path, key_type: KeyType = "ecdsa", force: bool = False) -> tuple[Issued, Issued]:
    """Create the development CA and the VTN server certificate (SAN localhost, 127.0.0.1)."""
    if (out / CA_CERT).exists() and not force:
        raise FileExistsError(f"{out / CA_CERT} exists (use --force to replace it)")
    ca = create_ca(out, key_type)
    vtn = issue(
        out, "vtn", "localhost", server=True, key_type=key_type, hosts=("localhost", "127.0.0.1")
    )
    return ca, vtn


def issue_ven(out: Path, name: str, key_type: KeyType = "ecdsa") -> Issued:
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError("VEN name may contain letters, digits, '-', '_' and '.' only")
    return issue(out, f"ven-{name}", name, server=False, key_type=key_type)
