"""XMPP link of one simulated VEN: its own XMPP session (slixmpp), the 2.0b XMPP binding
of :mod:`vtn.transports.xmpp_binding`, the same codec and OSB behaviour as over HTTP.

Requests (registration, reports, oadrCreatedEvent, ...) are IQ sets to the VTN's full
JID; the reply payload comes back in the IQ result. Payloads the VTN pushes (an IQ set
from the VTN) are acknowledged at once with an empty IQ result and then handled by the
OSB, as a pull VEN handles what its poll returned. The VEN registers with
``oadrTransportName`` xmpp and its own full JID as ``oadrTransportAddress`` (the link
fills both in), and sends the VTN a directed presence when its session starts so the VTN
can drain what queued while it was away.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
from collections.abc import Awaitable, Callable

from slixmpp import JID, Iq
from slixmpp.xmlstream import register_stanza_plugin
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import StanzaPath

from ven_sim.stats import Stats
from vtn.codec import CodecError, decode, encode
from vtn.codec import messages as m
from vtn.transports.xmpp_binding import (
    OadrPayload,
    ReconnectingClient,
    configure,
    to_bytes,
)
from vtn.transports.xmpp_raw import IqRefused, RawIq

log = logging.getLogger(__name__)

Inbound = Callable[["XmppLink", m.Message], Awaitable[None]]
register_stanza_plugin(Iq, OadrPayload)


class XmppLink:
    """One VEN's XMPP session; implements :class:`ven_sim.session.Link`."""

    def __init__(self, jid: str, password: str, vtn_jid: str, stats: Stats,
                 server: tuple[str, int] | None = None, tls: str = "none",
                 timeout_s: float = 10.0, validate: bool = False,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.vtn_jid = vtn_jid
        self.stats = stats
        self.server = server
        self.timeout_s = timeout_s
        self.validate = validate
        self.lock = asyncio.Lock()  # the OSB's step and pushed payloads take turns
        self.on_message: Inbound | None = None
        self.online = asyncio.Event()
        self.pushed = 0  # payloads the VTN delivered to this VEN
        self._stopping = False
        client = ReconnectingClient(jid, password, ssl_context)
        client.reconnect_max_s = 2.0
        configure(client, tls)
        if tls == "none":
            # loopback only: PLAIN, since slixmpp's SCRAM costs ~0.15 s of CPU per login
            # (4096 PBKDF2 rounds in Python), which a fleet of 1000 sessions cannot afford
            mechanisms = client.plugin["feature_mechanisms"]
            mechanisms.unencrypted_plain = True
            mechanisms.use_mech = "PLAIN"
        client.register_handler(CoroutineCallback(
            "OpenADR push", StanzaPath("iq@type=set/oadr"), self._on_push))
        client.add_event_handler("session_start", self._on_session_start)
        client.add_event_handler("disconnected", self._on_disconnected)
        self.client = client
        self.raw = RawIq(client)

    @property
    def jid(self) -> str:
        return str(self.client.boundjid)

    def connect(self) -> None:
        if self.server:
            self.client.connect(*self.server)
        else:
            self.client.connect()

    async def close(self) -> None:
        self._stopping = True
        self.client.cancel_connection_attempt()
        if self.client.transport is not None:
            await self.client.disconnect(wait=0.5)

    async def _on_session_start(self, _event: object) -> None:
        self.client.send_presence(pto=self.vtn_jid)  # directed: no roster, no broadcast
        self.online.set()

    def _on_disconnected(self, _reason: object) -> None:
        self.online.clear()
        if not self._stopping:
            asyncio.get_running_loop().call_later(1.0, self._reconnect)

    def _reconnect(self) -> None:
        if not self._stopping and self.client.transport is None:
            self.connect()

    # --- Link ----------------------------------------------------------------------------

    def _outbound(self, msg: m.Message) -> m.Message:
        if isinstance(msg, m.CreatePartyRegistration):
            return dataclasses.replace(msg, transport_name="xmpp", transport_address=self.jid,
                                       http_pull_model=None)
        return msg

    async def _request(self, body: bytes) -> bytes | str:
        """The reply payload's bytes, or the error kind."""
        if not self.online.is_set():
            try:
                await asyncio.wait_for(self.online.wait(), self.timeout_s)
            except TimeoutError:
                return "connection"
        stats = self.stats
        stats.in_flight += 1
        start = time.perf_counter()
        try:
            result = await self.raw.request(self.vtn_jid, body, self.timeout_s)
        except TimeoutError:
            return "timeout"
        except IqRefused as exc:
            return f"xmpp {exc.condition}"
        except Exception:  # the stream went away under the request
            return "connection"
        finally:
            stats.in_flight -= 1
        stats.latency.add(time.perf_counter() - start)
        payload = result.xml.find(f"{{{OadrPayload.namespace}}}oadrPayload")
        if payload is None:
            return "xmpp empty result"
        return to_bytes(payload)

    async def send(self, service: str, msg: m.Message) -> m.Message | None:
        if isinstance(msg, m.Poll):
            # XMPP VENs are pushed to and never poll (a poll would claim what the VTN's
            # XMPP delivery is about to send): "nothing pending", without a round trip
            return m.Response(m.EiResponse(m.OK, "OK", ""), ven_id=msg.ven_id)
        msg = self._outbound(msg)
        stats = self.stats
        stats.sent[m.ELEMENT_NAMES[type(msg)]] += 1
        answer = await self._request(encode(msg))
        if isinstance(answer, str):
            if not self._stopping:  # a request cut by our own shutdown is no VTN fault
                stats.errors[answer] += 1
            return None
        try:
            reply = decode(answer, validate=self.validate)
        except CodecError:
            stats.errors["decode"] += 1
            return None
        stats.received[m.ELEMENT_NAMES[type(reply)]] += 1
        resp = getattr(reply, "response", None)
        if isinstance(resp, m.EiResponse) and resp.code != m.OK:
            stats.errors[f"oadr {resp.code}"] += 1
        return reply

    async def send_bad(self, kind: str, service: str, body: bytes) -> None:
        """Deliberately broken payloads are an HTTP-scenario feature: counted, not sent
        (a payload that is not XML cannot be put into an XMPP stream at all)."""
        self.stats.bad_sent[kind] += 1
        self.stats.bad_answer(kind, "xmpp not sent")

    # --- pushed payloads -------------------------------------------------------------------

    async def _on_push(self, iq: Iq) -> None:
        sender: JID = iq["from"]
        if sender.bare.lower() != JID(self.vtn_jid).bare.lower():
            err = iq.reply(clear=True)
            err["type"] = "error"
            err["error"]["condition"] = "forbidden"
            err.send()
            return
        try:
            msg = decode(to_bytes(iq["oadr"].xml), validate=self.validate)
        except CodecError:
            self.stats.errors["decode"] += 1
            err = iq.reply(clear=True)
            err["type"] = "error"
            err["error"]["condition"] = "bad-request"
            err.send()
            return
        iq.reply(clear=True).send()  # the transport acknowledgement: received
        self.pushed += 1
        self.stats.received[m.ELEMENT_NAMES[type(msg)]] += 1
        if self.on_message is not None:
            async with self.lock:
                try:
                    await self.on_message(self, msg)
                except Exception:
                    log.exception("handling a pushed %s failed", m.ELEMENT_NAMES[type(msg)])
                    self.stats.errors["simulator"] += 1
