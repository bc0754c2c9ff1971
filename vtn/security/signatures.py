"""OpenADR 2.0b XML signatures: detached XMLDSig over ``#oadrSignedObject`` + ReplayProtect.

The wire format is the one openleadr (via signxml) produces and checks: a ``ds:Signature``
before ``oadrSignedObject`` in ``oadrPayload``, inclusive C14N 1.0, SHA-256 digests, two
references (the signed object and a ``ds:Object`` holding ``dsp:ReplayProtect``), and
the signer's certificate in ``KeyInfo``. Both directions are implemented here on lxml
C14N and ``cryptography`` directly, because a generic XMLDSig stack costs milliseconds
per message; verification is deliberately strict about the document shape (exactly one
signature and one signed object, the references we expect), which also shuts out
signature-wrapping tricks: what is verified is what the codec decodes. Interoperability
with signxml is checked by the tests in both directions.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from lxml import etree

from vtn.codec.xmlsafe import NS_DS, NS_OADR
from vtn.security.certs import fingerprint_der

NS_DSP = "http://openadr.org/oadr-2.0b/2012/07/xmldsig-properties"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_10_COMMENTS = C14N_10 + "#WithComments"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SIGNED_ID = "oadrSignedObject"
PROPS_ID = "prop"

_ds = f"{{{NS_DS}}}".__add__
_dsp = f"{{{NS_DSP}}}".__add__
T_SIGNATURE, T_SIGNED = _ds("Signature"), f"{{{NS_OADR}}}oadrSignedObject"
T_ID = f"{{{NS_OADR}}}Id"
_TS = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]00:00)$")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class SignatureError(Exception):
    """The message's signature is missing, malformed, wrong or not replay-protected."""


@dataclass(frozen=True, slots=True)
class Verified:
    fingerprint: str  # of the certificate that signed
    timestamp: datetime
    nonce: str


def _c14n(el: etree._Element, method: str = C14N_10) -> bytes:
    if method == EXC_C14N:
        return etree.tostring(el, method="c14n", exclusive=True)
    return etree.tostring(el, method="c14n", with_comments=method == C14N_10_COMMENTS)


def _digest(el: etree._Element, method: str = C14N_10) -> str:
    return base64.b64encode(hashlib.sha256(_c14n(el, method)).digest()).decode()


def format_timestamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    match = _TS.match(text.strip())
    if match is None:
        raise SignatureError("ReplayProtect timestamp is not a UTC xs:dateTime")
    *parts, frac, _ = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    try:
        return datetime(*map(int, parts), micro, tzinfo=UTC)  # type: ignore[misc]
    except ValueError as exc:
        raise SignatureError(f"ReplayProtect timestamp: {exc}") from None


# --- signing ---------------------------------------------------------------------------


class Signer:
    """Signs outbound payloads with one key and certificate, loaded once."""

    def __init__(self, cert_pem: bytes, key_pem: bytes) -> None:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("signing key must be RSA or ECDSA")
        cert = x509.load_pem_x509_certificate(cert_pem)
        self.key: PrivateKey = key
        self.method = RSA_SHA256 if isinstance(key, rsa.RSAPrivateKey) else ECDSA_SHA256
        der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_b64 = base64.b64encode(der).decode()
        self.fingerprint = fingerprint_der(der)

    @classmethod
    def from_files(cls, cert_file: str | Path, key_file: str | Path) -> Signer:
        return cls(Path(cert_file).read_bytes(), Path(key_file).read_bytes())

    def _value(self, signed_info: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(signed_info, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.key.sign(signed_info, ec.ECDSA(hashes.SHA256())))
        size = (self.key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def sign(self, payload: bytes, now: datetime | None = None) -> bytes:
        """Insert a ds:Signature (with a fresh ReplayProtect) into an oadrPayload."""
        root = etree.fromstring(payload)
        signed = root.find(T_SIGNED)
        if signed is None:
            raise ValueError("not an oadrPayload with an oadrSignedObject")
        sig = etree.Element(T_SIGNATURE, nsmap={"ds": NS_DS})
        signed.addprevious(sig)
        info = etree.SubElement(sig, _ds("SignedInfo"))
        etree.SubElement(info, _ds("CanonicalizationMethod"), Algorithm=C14N_10)
        etree.SubElement(info, _ds("SignatureMethod"), Algorithm=self.method)
        refs = [
            etree.SubElement(info, _ds("Reference"), URI=f"#{i}") for i in (SIGNED_ID, PROPS_ID)
        ]
        value = etree.SubElement(sig, _ds("SignatureValue"))
        x509_data = etree.SubElement(etree.SubElement(sig, _ds("KeyInfo")), _ds("X509Data"))
        etree.SubElement(x509_data, _ds("X509Certificate")).text = self.cert_b64
        obj = etree.SubElement(sig, _ds("Object"), Id=PROPS_ID)
        prop = etree.SubElement(
            etree.SubElement(obj, _ds("SignatureProperties")), _ds("SignatureProperty"),
            Target="#" + SIGNED_ID,
        )
        replay = etree.SubElement(prop, _dsp("ReplayProtect"), nsmap={"dsp": NS_DSP})
        etree.SubElement(replay, _dsp("timestamp")).text = format_timestamp(
            now or datetime.now(UTC)
        )
        etree.SubElement(replay, _dsp("nonce")).text = uuid.uuid4().hex
        for ref, target in zip(refs, (signed, obj), strict=True):
            transforms = etree.SubElement(ref, _ds("Transforms"))
            etree.SubElement(transforms, _ds("Transform"), Algorithm=C14N_10)
            etree.SubElement(ref, _ds("DigestMethod"), Algorithm=SHA256)
            etree.SubElement(ref, _ds("DigestValue")).text = _digest(target)
        value.text = base64.b64encode(self._value(_c14n(info))).decode()
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --- verification ----------------------------------------------------------------------


_local = threading.local()


def _parse(body: bytes) -> etree._Element:
    """Hardened like the codec's parser, but keeping whitespace, comments and PIs: the
    digest is over the document exactly as the VEN signed it."""
    if b"<!DOCTYPE" in body:
        raise SignatureError("DOCTYPE/DTD is not allowed")
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
            encoding="utf-8",
        )
    try:
        root = etree.fromstring(body, parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise SignatureError(f"not well-formed XML: {exc}") from None
    if root is None:
        raise SignatureError("empty document")
    return root


@lru_cache(maxsize=1024)
def _certificate(der: bytes) -> tuple[x509.Certificate, str]:
    return x509.load_der_x509_certificate(der), fingerprint_der(der)


def _one(parent: etree._Element, tag: str, what: str) -> etree._Element:
    found = parent.findall(tag)
    if len(found) != 1:
        raise SignatureError(f"expected exactly one {what}")
    return found[0]


def _algorithm(el: etree._Element, allowed: tuple[str, ...], what: str) -> str:
    algorithm = el.get("Algorithm", "")
    if algorithm not in allowed:
        raise SignatureError(f"{what} {algorithm!r} is not accepted")
    return algorithm


def _check_value(cert: x509.Certificate, method: str, value: bytes, data: bytes) -> None:
    key = cert.public_key()
    try:
        if method == RSA_SHA256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(value, data, padding.PKCS1v15(), hashes.SHA256())
        elif method == ECDSA_SHA256 and isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            if len(value) != 2 * size:
                raise SignatureError("ECDSA SignatureValue has the wrong length")
            r, s = int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        else:
            raise SignatureError("SignatureMethod does not match the certificate's key")
    except InvalidSignature:
        raise SignatureError("SignatureValue does not verify") from None


def verify(body: bytes, expected_fingerprint: str | None = None) -> Verified:
    """Check the detached signature of an oadrPayload; returns its ReplayProtect.

    ``expected_fingerprint`` pins the signing certificate (the VEN's); None accepts any
    certificate (integrity only). Timestamp window and nonce reuse are the caller's job.
    """
    root = _parse(body)
    children = list(root)
    if len(children) != 2 or children[0].tag != T_SIGNATURE or children[1].tag != T_SIGNED:
        raise SignatureError("oadrPayload must hold one ds:Signature then oadrSignedObject")
    sig, signed = children
    if (signed.get(T_ID) or signed.get("Id")) != SIGNED_ID:
        raise SignatureError("oadrSignedObject lacks Id=\"oadrSignedObject\"")
    info = _one(sig, _ds("SignedInfo"), "SignedInfo")
    c14n = _algorithm(
        _one(info, _ds("CanonicalizationMethod"), "CanonicalizationMethod"),
        (C14N_10, C14N_10_COMMENTS, EXC_C14N), "CanonicalizationMethod",
    )
    method = _algorithm(
        _one(info, _ds("SignatureMethod"), "SignatureMethod"), (RSA_SHA256, ECDSA_SHA256),
        "SignatureMethod",
    )
    objects = {o.get("Id"): o for o in sig.findall(_ds("Object")) if o.get("Id")}
    covered: dict[str, etree._Element] = {}
    for ref in info.findall(_ds("Reference")):
        uri = ref.get("URI", "")
        target = signed if uri == "#" + SIGNED_ID else objects.get(uri[1:])
        if target is None or uri in covered:
            raise SignatureError(f"Reference URI {uri!r} is not accepted")
        transforms = ref.find(_ds("Transforms"))
        ref_c14n = C14N_10
        for t in [] if transforms is None else list(transforms):
            ref_c14n = _algorithm(t, (C14N_10, C14N_10_COMMENTS, EXC_C14N), "Transform")
        _algorithm(_one(ref, _ds("DigestMethod"), "DigestMethod"), (SHA256,), "DigestMethod")
        if (_one(ref, _ds("DigestValue"), "DigestValue").text or "").strip() != _digest(
            target, ref_c14n
        ):
            raise SignatureError(f"digest of {uri} does not match")
        covered[uri] = target
    if "#" + SIGNED_ID not in covered:
        raise SignatureError("the signature does not cover #oadrSignedObject")
    replay = None
    for target in covered.values():
        if target is not signed:
            replay = target.find(f".//{_dsp('ReplayProtect')}")
            if replay is not None:
                break
    if replay is None:
        raise SignatureError("no signed dsp:ReplayProtect")
    cert_el = sig.find(f"{_ds('KeyInfo')}/{_ds('X509Data')}/{_ds('X509Certificate')}")
    if cert_el is None or not cert_el.text:
        raise SignatureError("KeyInfo carries no X509Certificate")
    try:
        cert, fingerprint = _certificate(base64.b64decode("".join(cert_el.text.split())))
        value = base64.b64decode("".join((sig.findtext(_ds("SignatureValue")) or "").split()))
    except ValueError:
        raise SignatureError("undecodable certificate or SignatureValue") from None
    if expected_fingerprint is not None and fingerprint != expected_fingerprint:
        raise SignatureError("message was signed with another certificate")
    _check_value(cert, method, value, _c14n(info, c14n))
    nonce = (replay.findtext(_dsp("nonce")) or "").strip()
    if not nonce or len(nonce) > 128:
        raise SignatureError("ReplayProtect nonce missing or too long")
    return Verified(fingerprint, parse_timestamp(replay.findtext(_dsp("timestamp")) or ""), nonce)
