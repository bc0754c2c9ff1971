"""The XMPP side of the delivery seam (:mod:`vtn.delivery`): a Deliverer that sends each
queued payload to the VEN's registered JID over the VTN's XMPP session, and the wiring
that starts the session with the VTN.

A message counts as delivered when the VEN's IQ result arrived; the VEN's OpenADR answer
(oadrCreatedEvent, ...) comes later as its own IQ set and goes through the engine like
any VEN request. When a VEN sends its directed presence (it logged in), the drainer scans
at once instead of at its next interval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry.models import Ven
from registry.port import DeliveryTarget
from registry.port.delivery import XMPP
from vtn.delivery import DeliveryFailed, DeliveryPolicy, Drainer, Sent
from vtn.transports.xmpp import XmppTransport

if TYPE_CHECKING:
    from vtn.app import Vtn


class XmppDeliverer:
    """Deliverer for VENs registered with oadrTransportName xmpp."""

    transport = XMPP

    def __init__(self, session: XmppTransport) -> None:
        self.session = session

    async def send(self, target: DeliveryTarget, ven: Ven, body: bytes) -> Sent:
        problem = await self.session.deliver(target.address, body)
        if problem is not None:
            raise DeliveryFailed(problem)
        # the IQ result carries no payload; the JID was authenticated by the server
        return Sent(reply=b"", peer_verified=True)

    async def close(self) -> None:
        await self.session.stop()


async def start_xmpp(vtn: Vtn, wait_s: float = 10.0) -> XmppTransport:
    """Connect the VTN's XMPP session (serving VEN requests with ``vtn.engine``) and, in a
    process that runs jobs, add the drainer of XMPP VENs' outboxes."""
    session = XmppTransport(vtn.engine, vtn.config.xmpp)
    if vtn.run_jobs:
        cfg = vtn.config.xmpp
        drainer = Drainer(vtn.ctx, vtn.engine, XmppDeliverer(session), DeliveryPolicy(
            lease_s=max(30.0, 2 * cfg.ack_timeout_s), backoff_max_s=cfg.retry_max_s,
            concurrency=cfg.concurrency,
        ))

        async def online(_jid: str) -> None:
            drainer.wake()

        session.on_online = online
        # a restarted Vtn replaces the drainer of its previous session
        vtn.drainers = [d for d in vtn.drainers if not isinstance(d.deliverer, XmppDeliverer)]
        vtn.drainers.append(drainer)
    await session.start(wait_s)
    return session
