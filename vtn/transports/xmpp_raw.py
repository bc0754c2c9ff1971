"""IQ stanzas carrying our own encoded payloads, written to the stream as bytes.

slixmpp serializes outgoing stanzas in pure Python (~4 ms for an oadrDistributeEvent on
a busy machine, most of an XMPP delivery's cost). A payload we send is bytes our codec
made (or stored after making), so it is spliced into the IQ as it is; only the IQ's own
attributes are escaped here. Answers are matched by stanza id (random) and sender.
"""

from __future__ import annotations

import asyncio
import uuid
from xml.sax.saxutils import quoteattr

import slixmpp
from slixmpp import JID
from slixmpp.xmlstream import StanzaBase
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher.base import MatcherBase

_DECL = b"<?xml"


class IqRefused(Exception):
    """The peer (or the server for it) answered with an IQ error."""

    def __init__(self, condition: str) -> None:
        super().__init__(condition)
        self.condition = condition


def _body(payload: bytes) -> bytes:
    if payload.startswith(_DECL):
        return payload[payload.index(b"?>") + 2:].lstrip()
    return payload


class _Answers(MatcherBase):
    def __init__(self, pending: dict[str, tuple[str, asyncio.Future[StanzaBase]]]) -> None:
        super().__init__(None)
        self.pending = pending

    def match(self, xml: StanzaBase) -> bool:
        if xml.name != "iq" or xml.get_toplevel_attr("type", "") not in ("result", "error"):
            return False
        return xml.get_toplevel_attr("id", "") in self.pending


class RawIq:
    """Sends IQ sets and results with pre-encoded payloads over one client's stream."""

    def __init__(self, client: slixmpp.ClientXMPP) -> None:
        self.client = client
        self.pending: dict[str, tuple[str, asyncio.Future[StanzaBase]]] = {}
        client.register_handler(Callback("OpenADR IQ answers", _Answers(self.pending),
                                         self._answer))
        client.add_event_handler("disconnected", self._fail_all)

    def _answer(self, stanza: StanzaBase) -> None:
        iq_id = stanza.get_toplevel_attr("id", "")
        peer, future = self.pending.get(iq_id, ("", None))
        if future is None or future.done():
            return
        sender = stanza["from"]
        # the peer answers, or the server on its behalf (offline: service-unavailable)
        if sender.bare.lower() != JID(peer).bare.lower() and str(sender) != "":
            return  # someone else's answer to an id it cannot know: ignored
        self.pending.pop(iq_id, None)
        if stanza["type"] == "error":
            future.set_exception(IqRefused(stanza["error"]["condition"] or "error"))
        else:
            future.set_result(stanza)

    def _fail_all(self, _reason: object) -> None:
        waiting = list(self.pending.values())
        self.pending.clear()  # in place: the matcher holds the same dict
        for _, future in waiting:
            if not future.done():
                future.set_exception(ConnectionError("XMPP stream closed"))

    async def request(self, to: str, payload: bytes, timeout_s: float) -> StanzaBase:
        """IQ set to ``to`` with ``payload`` as its child; the IQ result stanza. Raises
        :class:`IqRefused`, :class:`TimeoutError` or :class:`ConnectionError`."""
        iq_id = uuid.uuid4().hex
        future: asyncio.Future[StanzaBase] = asyncio.get_running_loop().create_future()
        self.pending[iq_id] = (to, future)
        self.client.send_raw(b"<iq type=\"set\" id=\"%s\" to=%s>%s</iq>" % (
            iq_id.encode(), quoteattr(to).encode(), _body(payload)))
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        finally:
            self.pending.pop(iq_id, None)

    def result(self, iq_id: str, to: str, payload: bytes | None) -> None:
        """The IQ result answering ``iq_id`` from ``to``, carrying ``payload`` (or empty)."""
        head = b"<iq type=\"result\" id=%s to=%s" % (quoteattr(iq_id).encode(),
                                                     quoteattr(to).encode())
        self.client.send_raw(head + b"/>" if payload is None
                             else head + b">" + _body(payload) + b"</iq>")
