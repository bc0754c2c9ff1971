"""OpenADR 2.0b rules the XSD leaves open, checked after a message decoded and validated.

The 2.0b schema declares ``ei:schemaVersion`` on every message element as optional, of a
type that admits ``2.0a``, ``2.0b`` and any extension token (``x-...``): the XSD accepts
``2.0a``. The 2.0b profile fixes it to ``2.0b``; a message that declares anything else
is not a 2.0b message, so it is refused with 459 (compliance error: valid against the
schema, against a profile rule) in the response type it expects. A message without the
attribute is accepted (the XSD makes it optional and VENs in the field omit it). Other
fixed values are checked where they are used (docs/openadr.md lists them all):
oadrProfileName and oadrTransportName in registration (451), the service endpoint a
message may arrive on (454), UTF-8 and no DOCTYPE (400, vtn/codec/xmlsafe.py).

Only the start of the document is read again, with a pull parser under the same
hardened options as the codec (no entities, no DTD, no network).
"""

from __future__ import annotations

from lxml import etree

SCHEMA_VERSION = "2.0b"
NS_OADR = "http://openadr.org/oadr-2.0b/2012/07"
NS_EI = "http://docs.oasis-open.org/ns/energyinterop/201110"
_SIGNED = f"{{{NS_OADR}}}oadrSignedObject"
_VERSION = f"{{{NS_EI}}}schemaVersion"
_CHUNK = 4096


def declared_schema_version(body: bytes) -> str | None:
    """The message element's ``ei:schemaVersion`` (None when absent or not found)."""
    parser = etree.XMLPullParser(
        events=("start",), resolve_entities=False, no_network=True, load_dtd=False,
        huge_tree=False,
    )
    in_signed = False
    for pos in range(0, len(body), _CHUNK):
        try:
            parser.feed(body[pos : pos + _CHUNK])
        except etree.XMLSyntaxError:
            return None  # the codec already parsed it; nothing more to say
        for _, el in parser.read_events():
            if in_signed:
                return el.get(_VERSION)  # type: ignore[no-any-return]
            in_signed = el.tag == _SIGNED
    return None


def schema_version_problem(body: bytes) -> str | None:
    """Why this message is not 2.0b, or None."""
    if body.count(b"schemaVersion") == body.count(b'schemaVersion="2.0b"'):
        return None  # every mention says 2.0b (or there is none): no parse needed
    version = declared_schema_version(body)
    if version is not None and " ".join(version.split()) != SCHEMA_VERSION:  # xs:token
        return f"schemaVersion {version[:20]!r} is not {SCHEMA_VERSION}"
    return None
