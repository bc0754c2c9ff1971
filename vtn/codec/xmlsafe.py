"""Hardened XML parsing and the (lazily built) OpenADR 2.0b schema.

VENs are untrusted network peers, so every document is parsed with entity expansion,
DTD loading and network access disabled, and any document carrying a DOCTYPE is refused
outright: that closes XXE, external DTDs, parameter entities and billion-laughs without
having to reason about which libxml2 option covers which trick.
"""

from __future__ import annotations

import threading
from importlib.resources import as_file, files

from lxml import etree

from .errors import MalformedXml

# libxml2 refuses nesting deeper than this when huge_tree is off (XML_PARSE_HUGE unset).
# OpenADR 2.0b documents need < 20 levels; the schema rejects anything unexpected.
MAX_DEPTH = 256

_DOCTYPE = b"<!DOCTYPE"
_local = threading.local()
_schema_lock = threading.Lock()
_schema: etree.XMLSchema | None = None


def _new_parser() -> etree.XMLParser:
    """One parser per thread: lxml parsers must not be shared across threads."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=True,
        remove_comments=True,
        remove_pis=True,
        # Force UTF-8 (OpenADR mandates it): a declared UTF-16/Latin-1 document cannot
        # smuggle a DOCTYPE past the byte check below, and bad UTF-8 is a parse error.
        encoding="utf-8",
    )


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    return parser


def parse_xml(data: bytes | bytearray | memoryview | str) -> etree._Element:
    """Parse untrusted bytes into an element tree, or raise ``MalformedXml``."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif not isinstance(data, bytes):
        data = bytes(data)
    if _DOCTYPE in data:
        raise MalformedXml("DOCTYPE/DTD is not allowed")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise MalformedXml(f"not well-formed XML: {exc}") from None
    except ValueError as exc:  # e.g. lxml refusing odd input types/encodings
        raise MalformedXml(f"unparseable XML: {exc}") from None
    if root is None:
        raise MalformedXml("empty document")
    return root


def _load_schema() -> etree.XMLSchema:
    """Build the schema from openleadr's bundled XSD files, offline.

    The XSD imports its siblings by relative path, so it is parsed from its real file
    location (``as_file`` materialises the directory if the package is zipped).
    """
    xsd_parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    with as_file(files("openleadr") / "schema") as schema_dir:
        doc = etree.parse(str(schema_dir / "oadr_20b.xsd"), xsd_parser)
        return etree.XMLSchema(doc)


def get_schema() -> etree.XMLSchema:
    """Return the process-wide OpenADR 2.0b ``XMLSchema`` (built on first use, ~0.3 s)."""
    global _schema
    if _schema is None:
        with _schema_lock:
            if _schema is None:
                _schema = _load_schema()
    return _schema


def _thread_schema() -> etree.XMLSchema:
    """This thread's schema instance: no lock around validation, so a large document
    validated in a worker thread does not hold up small ones on the event loop."""
    schema: etree.XMLSchema | None = getattr(_local, "schema", None)
    if schema is None:
        main = threading.current_thread() is threading.main_thread()
        schema = _local.schema = get_schema() if main else _load_schema()
    return schema


def schema_errors(root: etree._Element) -> str | None:
    """Validate ``root`` against the XSD; return the first error line, or None if valid."""
    schema = _thread_schema()  # XMLSchema keeps its error log on the instance
    if schema.validate(root):
        return None
    log = schema.error_log
    first = log[0] if len(log) else None
    if first is None:
        return "document does not match the OpenADR 2.0b schema"
    return f"line {first.line}: {first.message}"


# --- OpenADR 2.0b namespaces (shared by decode and encode) ---------------------------

NS_OADR = "http://openadr.org/oadr-2.0b/2012/07"
NS_PYLD = "http://docs.oasis-open.org/ns/energyinterop/201110/payloads"
NS_EI = "http://docs.oasis-open.org/ns/energyinterop/201110"
NS_EMIX = "http://docs.oasis-open.org/ns/emix/2011/06"
NS_POWER = "http://docs.oasis-open.org/ns/emix/2011/06/power"
NS_SCALE = "http://docs.oasis-open.org/ns/emix/2011/06/siscale"
NS_XCAL = "urn:ietf:params:xml:ns:icalendar-2.0"
NS_STRM = "urn:ietf:params:xml:ns:icalendar-2.0:stream"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_GML = "http://www.opengis.net/gml/3.2"

# ItemBase.namespace prefix <-> namespace URI.
ITEM_NAMESPACES: dict[str, str] = {"power": NS_POWER, "oadr": NS_OADR, "emix": NS_EMIX}
