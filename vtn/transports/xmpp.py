"""The VTN as an XMPP client (slixmpp) of an XMPP server: OpenADR payloads in IQ stanzas
(see :mod:`vtn.transports.xmpp_binding`) to and from the same :class:`Engine` as HTTP.

Inbound: an IQ set carrying an ``<oadrPayload>`` goes to ``Engine.handle`` (bytes in,
bytes out) with the sender's authenticated bare JID as the VEN's identity; the reply
payload goes back in the IQ result. Outbound: :meth:`XmppTransport.deliver` sends one
queued payload and reports whether the VEN acknowledged it (IQ result) in time.

The connection is kept up: when the server goes away (restart, network) the client
reconnects with a capped back-off, and deliveries meanwhile report "not delivered" so the
outbox keeps the messages for the next attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from slixmpp import JID, Iq
from slixmpp.jid import InvalidJID
from slixmpp.xmlstream import register_stanza_plugin
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import StanzaPath

from vtn.codec import CodecError, decode, encode
from vtn.codec import messages as m
from vtn.config import XmppConfig
from vtn.services.dispatch import Engine, error_reply
from vtn.transports.xmpp_binding import (
    FEATURE,
    OadrPayload,
    ReconnectingClient,
    configure,
    identity_of,
    service_of,
    to_bytes,
)
from vtn.transports.xmpp_raw import IqRefused, RawIq

log = logging.getLogger(__name__)

OnOnline = Callable[[str], Awaitable[None]]  # full JID of a VEN that became available


def registration_problem(msg: m.Message, sender: JID) -> str | None:
    """Why an oadrCreatePartyRegistration that came over XMPP is refused, or None.

    The VTN delivers to the registered transport address, so it must be the sender's own
    full JID: otherwise anyone could point another JID's deliveries elsewhere."""
    if not isinstance(msg, m.CreatePartyRegistration):
        return None
    if msg.transport_name != "xmpp":
        return "register over XMPP with oadrTransportName xmpp"
    try:
        address = JID(msg.transport_address) if msg.transport_address else None
    except InvalidJID:
        return "oadrTransportAddress is not a JID"
    if address is None or not address.resource:
        return "oadrTransportAddress must be your full JID (with resource)"
    if address.bare.lower() != sender.bare.lower():
        return "oadrTransportAddress is not the JID this message came from"
    return None


class XmppTransport:
    """The VTN's XMPP session: serves inbound payloads, delivers outbound ones."""

    def __init__(self, engine: Engine, config: XmppConfig,
                 on_online: OnOnline | None = None) -> None:
        self.engine = engine
        self.config = config
        self.on_online = on_online
        self.online = asyncio.Event()
        self.sessions = 0  # sessions started (1 + reconnections)
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        client = ReconnectingClient(config.jid, config.password)
        client.reconnect_max_s = config.reconnect_max_s
        configure(client, config.tls, config.ca_file)
        register_stanza_plugin(Iq, OadrPayload)
        client.register_plugin("xep_0030")  # service discovery: announce OpenADR 2.0
        client.register_plugin("xep_0199", {"keepalive": True, "interval": 60, "timeout": 20})
        client.plugin["xep_0030"].add_feature(FEATURE)
        client.register_handler(CoroutineCallback(
            "OpenADR payload", StanzaPath("iq@type=set/oadr"), self._on_payload))
        client.add_event_handler("session_start", self._on_session_start)
        client.add_event_handler("disconnected", self._on_disconnected)
        client.add_event_handler("presence_available", self._on_presence)
        self.client = client
        self.raw = RawIq(client)

    @property
    def jid(self) -> str:
        return str(self.client.boundjid)

    async def start(self, wait_s: float = 10.0) -> bool:
        """Connect; True once the session is up within ``wait_s`` (else it keeps trying
        in the background and deliveries wait for it)."""
        self._connect()
        try:
            await asyncio.wait_for(self.online.wait(), wait_s)
            return True
        except TimeoutError:
            log.warning("XMPP: no session with %s yet; retrying in the background",
                        self.config.server_host or JID(self.config.jid).domain)
            return False

    def _connect(self) -> None:
        cfg = self.config
        if cfg.server_host:
            self.client.connect(cfg.server_host, cfg.server_port)
        else:
            self.client.connect()

    async def stop(self) -> None:
        self._stopping = True
        self.online.clear()
        self.client.cancel_connection_attempt()
        if self.client.transport is not None:
            await self.client.disconnect(wait=1.0)
        for task in list(self._tasks):
            task.cancel()

    # --- session -------------------------------------------------------------------------

    async def _on_session_start(self, _event: object) -> None:
        self.client.send_presence(ppriority=0)
        self.sessions += 1
        self.online.set()
        log.info("XMPP session %d up as %s", self.sessions, self.client.boundjid)

    def _on_disconnected(self, reason: object) -> None:
        self.online.clear()
        if self._stopping:
            return
        log.warning("XMPP connection lost (%s); reconnecting", reason)
        loop = asyncio.get_running_loop()
        loop.call_later(min(1.0, self.config.reconnect_max_s), self._reconnect)

    def _reconnect(self) -> None:
        if not self._stopping and self.client.transport is None:
            self._connect()

    def _on_presence(self, presence: object) -> None:
        """A VEN's directed presence: it is (back) online, so its outbox can drain now."""
        if self.on_online is None:
            return
        sender = presence["from"]  # type: ignore[index]
        if sender.bare == self.client.boundjid.bare:
            return
        task = asyncio.ensure_future(self.on_online(str(sender)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- inbound -------------------------------------------------------------------------

    async def _on_payload(self, iq: Iq) -> None:
        try:
            await self._serve(iq)
        except Exception:  # a bug must not leave the VEN waiting for its IQ timeout
            log.exception("XMPP: unexpected error serving %s", iq["from"])
            self._error(iq, "wait", "internal-server-error", "internal error")

    async def _serve(self, iq: Iq) -> None:
        sender: JID = iq["from"]
        payload = iq["oadr"].xml
        service = service_of(payload)
        if service is None:
            self._error(iq, "modify", "bad-request", "not an OpenADR 2.0b message")
            return
        body = to_bytes(payload)
        if service == "EiRegisterParty":
            refusal = self._registration_refusal(body, sender)
            if refusal is not None:
                self._result(iq, refusal)
                return
        reply = await self.engine.handle(service, body, identity_of(sender.bare))
        if reply.content_type != "application/xml":  # problem+json: no OpenADR answer
            if reply.status >= 500:
                self._error(iq, "wait", "internal-server-error", reply.kind)
            else:
                self._error(iq, "modify", "bad-request", reply.kind)
            return
        self._result(iq, reply.body)

    def _registration_refusal(self, body: bytes, sender: JID) -> bytes | None:
        try:
            msg = decode(body, validate=False)
        except CodecError:
            return None  # the engine answers malformed input itself
        problem = registration_problem(msg, sender)
        if problem is None:
            return None
        log.warning("XMPP: registration from %s refused: %s", sender, problem)
        reply = error_reply(self.engine.ctx, m.ELEMENT_NAMES[type(msg)], m.NOT_ALLOWED,
                            problem, getattr(msg, "request_id", None),
                            getattr(msg, "ven_id", None))
        return encode(reply)

    def _result(self, iq: Iq, body: bytes) -> None:
        self.raw.result(iq["id"], str(iq["from"]), body)

    def _error(self, iq: Iq, etype: str, condition: str, text: str) -> None:
        err = iq.reply(clear=True)
        err["type"] = "error"
        err["error"]["type"] = etype
        err["error"]["condition"] = condition
        err["error"]["text"] = text[:200]
        err.send()

    # --- outbound ------------------------------------------------------------------------

    async def deliver(self, address: str, body: bytes) -> str | None:
        """Send one payload to a VEN's full JID; None once the VEN acknowledged it (IQ
        result), else why not: the VTN has no session, the VEN is offline (the server
        answers service-unavailable), refused it, or did not answer within
        ``ack_timeout_s``. The caller keeps the message and tries again later."""
        if not self.online.is_set():
            return "no XMPP session"
        try:
            await self.raw.request(address, body, self.config.ack_timeout_s)
            return None
        except IqRefused as exc:
            return f"VEN answered {exc.condition}"
        except TimeoutError:
            return "no acknowledgement in time"
        except Exception as exc:  # the stream went away while sending
            return f"connection: {type(exc).__name__}"
