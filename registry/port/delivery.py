"""Delivery to VENs that do not poll (HTTP push, XMPP): targets, per-VEN leases, acks.

The outbox stays the one record of what a VEN is owed. A pull VEN drains it with
``claim_next`` (the poll's reply is the delivery). A push or XMPP VEN's queue is drained
by a deliverer (``vtn.delivery``) that, per VEN:

1. takes the VEN's lease (``acquire_lease``): one process at a time pushes a VEN's queue;
   a lease that is not renewed expires (a killed process loses it), and each take-over
   raises the lease's fencing ``token``;
2. reads the oldest message without removing it (``peek_next``);
3. sends it and, once the VEN acknowledged it on its transport, removes it with
   ``ack_delivered(lease, seq)`` - only while ``lease`` is still the VEN's current lease
   (same token), so a stalled holder that lost its lease cannot remove what its
   successor is delivering.

A message is therefore removed only after an acknowledgement and survives ``kill -9``
until then (delivery is at least once; a retry resends the same stored message). The
lease row also carries the retry schedule: after a failure the holder keeps the lease
until the next attempt (``until``) with ``attempts`` counted, so every process respects
the same backoff. Which VENs take this path is written at registration
(``Batch.delivery_targets``: VEN id, transport name, transport address).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from registry.models import OutboxMessage, Ven

PUSH = "simpleHttp"  # HTTP push: oadrTransportName simpleHttp with oadrHttpPullModel false
XMPP = "xmpp"


@dataclass(slots=True, frozen=True)
class DeliveryTarget:
    """A VEN the VTN sends to: its transport ("simpleHttp" push or "xmpp") and address
    (an http(s) URL, or the VEN's JID)."""

    ven_id: str
    transport: str
    address: str


@dataclass(slots=True, frozen=True)
class Lease:
    """The right to deliver one VEN's queue until ``until`` (epoch seconds)."""

    ven_id: str
    holder: str
    token: int  # fencing token: grows on every take-over
    until: float
    attempts: int = 0  # failed deliveries in a row (the retry schedule)


def target_of(ven: Ven) -> DeliveryTarget | None:
    """The delivery target a registered VEN's stored transport fields describe (import)."""
    if not ven.registered or not ven.transport_address:
        return None
    if ven.transport_name == XMPP or (ven.transport_name == PUSH
                                      and ven.http_pull_model is False):
        return DeliveryTarget(ven.ven_id, ven.transport_name, ven.transport_address)
    return None


class DeliveryStore(Protocol):
    async def delivery_candidates(
        self, transport: str, now: float, limit: int
    ) -> list[DeliveryTarget]:
        """Targets of ``transport`` with a pending outbox message and no live lease."""
        ...

    async def delivery_target(self, ven_id: str) -> DeliveryTarget | None: ...

    async def acquire_lease(
        self, ven_id: str, holder: str, now: float, ttl_s: float
    ) -> Lease | None:
        """Take the VEN's lease if nobody holds it (or it expired): token + 1. None if a
        live lease is held (by anyone, this holder too)."""
        ...

    async def renew_lease(
        self, lease: Lease, until: float, attempts: int | None = None
    ) -> Lease | None:
        """Extend a lease still held (same token); None if it was lost."""
        ...

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up now (expired at once; the token stays)."""
        ...

    async def peek_next(self, ven_id: str) -> OutboxMessage | None:
        """The oldest pending message of a VEN, left in place."""
        ...

    async def ack_delivered(self, lease: Lease, seq: int) -> bool:
        """Remove message ``seq`` of ``lease.ven_id`` if the lease is still current.
        False if the lease was lost or the message is gone."""
        ...
