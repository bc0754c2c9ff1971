"""The OpenADR 2.0b XMPP binding, shared by the VTN's XMPP client and ven-sim's XMPP VENs.

Every OpenADR payload travels as the one child ``<oadrPayload>`` of an ``<iq type="set">``
(2.0b profile section 9.3: every service operation expects a response, so IQ, not
``<message>``; no pub-sub, no roster). The receiver answers each set with an
``<iq type="result">`` with the same id:

- a request the VTN serves (oadrCreatePartyRegistration, oadrCreatedEvent,
  oadrUpdateReport, ...) gets its OpenADR reply inside the result, as the HTTP binding
  returns it in the response body;
- a payload the VTN delivers (oadrDistributeEvent, oadrCreateReport, ...) is
  acknowledged by an empty result: that result is the transport acknowledgement after
  which the VTN removes the message from the VEN's outbox. The VEN's OpenADR answer
  (oadrCreatedEvent, oadrCreatedReport, ...) is a request of its own (an IQ set to the
  VTN), exactly as a pull VEN posts it after polling.

There are no URLs: the service of a payload is named by its element
(:func:`service_of`). The sender's JID is authenticated by the XMPP server; the VTN binds
a VEN to its bare JID (:func:`identity_of`) the way the HTTP binding binds it to a client
certificate.
"""

from __future__ import annotations

import asyncio
import ssl
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.xmlstream import ElementBase

OADR_NS = "http://openadr.org/oadr-2.0b/2012/07"
PAYLOAD = f"{{{OADR_NS}}}oadrPayload"
SIGNED = f"{{{OADR_NS}}}oadrSignedObject"
# XEP-0030 feature the VTN announces (2.0b section 9.3.4)
FEATURE = "http://openadr.org/openadr2"

_SERVICES = {
    "EiRegisterParty": ("oadrQueryRegistration", "oadrCreatePartyRegistration",
                        "oadrCancelPartyRegistration", "oadrCanceledPartyRegistration",
                        "oadrResponse"),
    "EiReport": ("oadrRegisterReport", "oadrRegisteredReport", "oadrCreateReport",
                 "oadrCreatedReport", "oadrUpdateReport", "oadrUpdatedReport",
                 "oadrCancelReport", "oadrCanceledReport"),
    "EiEvent": ("oadrRequestEvent", "oadrCreatedEvent"),
    "EiOpt": ("oadrCreateOpt", "oadrCancelOpt"),
    "OadrPoll": ("oadrPoll",),
}
SERVICE_OF_ELEMENT = {name: service for service, names in _SERVICES.items() for name in names}


class OadrPayload(ElementBase):
    """``<oadrPayload>`` as an IQ child, so slixmpp routes IQs that carry one to us."""

    namespace = OADR_NS
    name = "oadrPayload"
    plugin_attrib = "oadr"
    interfaces: set[str] = set()


def message_name(payload: ET.Element) -> str | None:
    """Local name of the OpenADR message inside an ``<oadrPayload>`` element."""
    signed = payload.find(SIGNED)
    if signed is None or len(signed) == 0:
        return None
    tag = signed[0].tag
    return tag.rsplit("}", 1)[-1] if tag.startswith(f"{{{OADR_NS}}}") else None


def service_of(payload: ET.Element) -> str | None:
    """The OpenADR service the message belongs to (the HTTP binding's URL path end)."""
    name = message_name(payload)
    return SERVICE_OF_ELEMENT.get(name) if name else None


def to_bytes(payload: ET.Element) -> bytes:
    """Serialize the payload element the XMPP stream parser built (the codec then
    decodes and XSD-validates it as it does an HTTP body). Prefixes may differ from the
    sender's; the XML is the same."""
    return ET.tostring(payload, encoding="utf-8", xml_declaration=True)


def identity_of(jid_bare: str) -> str:
    """What the VTN binds a VEN to when it talks XMPP (its ``fingerprint`` field): the
    authenticated bare JID, marked so it never equals a certificate fingerprint."""
    return f"xmpp:{jid_bare.lower()}"


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """The client TLS context (server certificate and host name checked). Building one
    loads the CA bundle (~10 ms, far more on a busy machine), so a fleet of sessions
    shares one: slixmpp would otherwise build two per session."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class ReconnectingClient(slixmpp.ClientXMPP):
    """One XMPP session; reconnection attempts are capped at ``reconnect_max_s``."""

    reconnect_max_s = 5.0

    def __init__(self, jid: str, password: str, ssl_context: ssl.SSLContext | None = None,
                 **kwargs: object) -> None:
        super().__init__(jid, password, ssl_context=ssl_context or tls_context(), **kwargs)

    def reschedule_connection_attempt(self) -> asyncio.Future | None:  # type: ignore[override]
        self._connect_loop_wait = min(self._connect_loop_wait, self.reconnect_max_s)
        fut = super().reschedule_connection_attempt()
        self._connect_loop_wait = min(self._connect_loop_wait, self.reconnect_max_s)
        return fut


def configure(client: slixmpp.ClientXMPP, tls: str, ca_file: str = "") -> None:
    """TLS policy of a connection: "starttls" (required), "direct" or "none" (loopback)."""
    client.enable_direct_tls = tls == "direct"
    client.enable_starttls = tls == "starttls"
    client.enable_plaintext = tls == "none"
    if tls == "none":  # SCRAM never sends the password; TLS-less only on loopback
        client.plugin["feature_mechanisms"].unencrypted_scram = True
    if ca_file:
        client.ca_certs = ca_file  # slixmpp loads it into the context at connect
