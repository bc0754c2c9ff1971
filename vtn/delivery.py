"""The delivery seam: one durable outbox, drained by pull, HTTP push or XMPP.

The outbox (``registry.port.outbox``) is the single record of what a VEN is owed. A
pull VEN drains it itself: each oadrPoll claims one message (``claim_next``; the poll's
reply is the delivery). For a VEN registered for push or XMPP (``Batch.delivery_targets``,
written at registration) a :class:`Drainer` drains it, through a transport-specific
:class:`Deliverer`:

- **One process per VEN.** The drainer scans the store for targets of its transport with
  something queued and no live lease (``delivery_candidates``), takes the VEN's lease
  (``acquire_push_lease``; a fencing token grows on each take-over) and renews it while it
  works. A killed process stops renewing; its leases expire after ``lease_s`` and
  another process takes over. One message in flight per VEN: the worker sends the oldest
  message, waits for the acknowledgement, then the next.
- **Removed only after an acknowledgement.** The worker reads the oldest message without
  removing it (``peek_next``), hands the bytes to ``Deliverer.send`` and removes it with
  ``ack_delivered(lease, seq)`` once ``send`` returned - conditional on still holding the
  lease. Until then the message survives ``kill -9`` and is sent again (at least once:
  stored messages are resent byte for byte, with the same requestID).
- **Replies.** ``send`` returns the VEN's synchronous reply (:class:`Sent`): empty, or an
  OpenADR payload (``oadrCreatedEvent``, ``oadrRegisteredReport``, ``oadrResponse``...)
  that goes through the engine exactly as if the VEN had sent it to the VTN (same checks,
  same records); the engine's answer to it has nowhere to go and is dropped. A reply the
  engine cannot read (HTTP 400/503 from the engine) counts as a failed delivery.
- **Distribute markers** are built when they are sent, as the poll does (from the events
  current for the VEN, ``distribute_for``). After the ack the VEN's events are read
  again; if they changed while the message was in flight (a marker written then was a
  duplicate of the one being sent), the marker is written again.
- **Failures** (``DeliveryFailed``) are retried with exponential backoff and jitter. The
  schedule lives in the lease row: the worker keeps the lease until the next attempt
  (``renew_push_lease(until=retry time, attempts=n)``) and stops; any process may retry then.
- **Liveness.** An acknowledged delivery is contact (as a VEN-initiated message is).

A transport adds a Deliverer (``transport`` = the DeliveryTarget.transport it serves:
``"simpleHttp"`` for push, ``"xmpp"``), then ``Vtn.drainers.append(Drainer(ctx, engine,
deliverer, policy))`` before ``Vtn.start``. The HTTP push deliverer is
``vtn.transports.push``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from registry.models import Ven
from registry.port import Batch, DeliveryTarget, PushLease
from vtn.codec import decode, encode
from vtn.codec import messages as m
from vtn.services.base import Context, contact, new_request_id
from vtn.services.dispatch import SERVICES, Engine
from vtn.services.distribute import distribute
from vtn.services.events import DISTRIBUTE, distribute_for

log = logging.getLogger(__name__)
STOP_WAIT_S = 5.0  # Drainer.stop waits this long for its tasks


class DeliveryFailed(Exception):
    """The VEN did not acknowledge the message (refused, timed out, bad answer): retry."""


@dataclass(slots=True)
class Sent:
    """What a VEN answered to a delivered message."""

    reply: bytes = b""  # its synchronous OpenADR reply; empty: acknowledged, no payload
    # the certificate the VEN presented on this connection (TLS), if any ...
    peer_fingerprint: str | None = None
    # ... or: the transport authenticated the VEN otherwise (e.g. an XMPP server-verified
    # JID): its reply is handled as coming with the certificate the VEN is bound to
    peer_verified: bool = False


class Deliverer(Protocol):
    transport: str  # the DeliveryTarget.transport it serves

    async def send(self, target: DeliveryTarget, ven: Ven, body: bytes) -> Sent:
        """Hand one message to the VEN; return once it acknowledged it, else raise
        DeliveryFailed. Must honour its own timeouts (the lease is renewed around it)."""
        ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class DeliveryPolicy:
    lease_s: float = 30.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    backoff_jitter: float = 0.3
    scan_interval_s: float = 0.25
    scan_batch: int = 500
    concurrency: int = 256

    def backoff(self, attempts: int) -> float:
        """Delay before attempt ``attempts + 1``: exponential, capped, +- jitter."""
        base = min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(attempts - 1, 0))
        return max(0.01, base * (1 + self.backoff_jitter * (2 * random.random() - 1)))


def holder_id() -> str:
    """This process, as a lease holder: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# element name -> the service a VEN would POST it to (the first that accepts it)
_SERVICE_OF: dict[str, str] = {}
for _service, _handlers in SERVICES.items():
    for _type in _handlers:
        if _service != "OadrPoll":
            _SERVICE_OF.setdefault(m.ELEMENT_NAMES[_type], _service)
# the message element inside oadrSignedObject: found without parsing (the engine parses
# and validates the reply anyway)
_MESSAGE = re.compile(rb"oadrSignedObject[^>]*>\s*<(?:[A-Za-z_][\w.-]*:)?(oadr\w+)")


def service_of(reply: bytes) -> str | None:
    """The OpenADR service a VEN's reply belongs to (as if it had POSTed it there)."""
    found = _MESSAGE.search(reply, 0, 4096)
    if found is not None:
        return _SERVICE_OF.get(found.group(1).decode())
    try:  # unusual layout: parse it
        msg = decode(reply, validate=False)
    except Exception:
        return None
    return _SERVICE_OF.get(m.ELEMENT_NAMES[type(msg)])


def _event_state(msg: m.DistributeEvent) -> list[tuple[str, int, str]]:
    return [(e.event_id, e.modification_number, e.event_status) for e in msg.events]


@dataclass(slots=True)
class _Held:
    """A worker's lease, replaced as it is renewed; ``lost`` once another process has it."""

    lease: PushLease
    lost: bool = False


class Drainer:
    """Drains the outbox of every VEN of one transport (see the module docstring)."""

    def __init__(self, ctx: Context, engine: Engine, deliverer: Deliverer,
                 policy: DeliveryPolicy, holder: str | None = None) -> None:
        self.ctx, self.engine, self.deliverer, self.policy = ctx, engine, deliverer, policy
        self.holder = holder or holder_id()
        self.workers: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.delivered = 0  # acknowledged messages (bench, tests)
        self.failures = 0

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=f"drain-{self.deliverer.transport}")

    async def stop(self) -> None:
        """Cancel the scan loop and the workers, waiting at most STOP_WAIT_S for them: a
        stop must end even if a send is stuck where cancellation does not reach it."""
        tasks = [t for t in [self._loop_task, *self.workers.values()] if t is not None]
        self._loop_task = None
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_WAIT_S)
            if pending:
                log.warning("%s delivery: %d task(s) did not stop within %.0f s",
                            self.deliverer.transport, len(pending), STOP_WAIT_S)
        with contextlib.suppress(asyncio.TimeoutError):
            async with asyncio.timeout(STOP_WAIT_S):
                await self.deliverer.close()

    def wake(self) -> None:
        """Scan now (something was queued in this process)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.scan()
            except Exception:
                log.exception("%s delivery scan failed", self.deliverer.transport)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.policy.scan_interval_s):
                    await self._wake.wait()
            self._wake.clear()

    async def scan(self) -> int:
        """Start a worker for each VEN with something queued and nobody delivering."""
        room = self.policy.concurrency - len(self.workers)
        if room <= 0:
            return 0
        found = await self.ctx.store.delivery_candidates(
            self.deliverer.transport, time.time(), min(room + len(self.workers),
                                                       self.policy.scan_batch))
        started = 0
        for target in found:
            if target.ven_id in self.workers or len(self.workers) >= self.policy.concurrency:
                continue
            task = asyncio.create_task(self._worker(target))
            self.workers[target.ven_id] = task
            task.add_done_callback(lambda _t, v=target.ven_id: self.workers.pop(v, None))
            started += 1
        return started

    # --- one VEN ---------------------------------------------------------------

    async def _worker(self, target: DeliveryTarget) -> None:
        store, policy = self.ctx.store, self.policy
        lease = await store.acquire_push_lease(target.ven_id, self.holder, time.time(),
                                          policy.lease_s)
        if lease is None:
            return  # another process delivers this VEN
        held = _Held(lease)
        work = asyncio.current_task()
        renewer = asyncio.create_task(self._keep(held, work))
        outcome: str | None = None
        stopping = False
        try:
            outcome = await self._drain(target, held)
        except asyncio.CancelledError:
            stopping = not held.lost  # Drainer.stop: hand the VEN over at once
        except Exception:
            log.exception("delivery to VEN %s failed", target.ven_id)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        if held.lost:
            return  # someone else's now: nothing more to write
        with contextlib.suppress(Exception):
            if outcome is not None:  # failed: keep the lease until the retry time
                await self._failed(held.lease, outcome)
            else:
                await store.release_push_lease(held.lease)
        if stopping:
            raise asyncio.CancelledError

    async def _keep(self, held: _Held, work: asyncio.Task[None] | None) -> None:
        """Renew the lease while the worker runs (also during a slow send); a lost lease
        stops the worker at once, so two processes never send to one VEN together."""
        every = self.policy.lease_s / 3
        while True:
            await asyncio.sleep(every)
            try:
                renewed = await self.ctx.store.renew_push_lease(
                    held.lease, time.time() + self.policy.lease_s)
            except Exception:
                log.warning("push lease of VEN %s not renewed (store)", held.lease.ven_id)
                continue
            if renewed is None:
                held.lost = True
                if work is not None:
                    work.cancel()
                return
            held.lease = renewed

    async def _drain(self, target: DeliveryTarget, held: _Held) -> str | None:
        """Send the VEN's queue in order. None when done; the failure reason otherwise."""
        store = self.ctx.store
        ven = await store.get_ven(target.ven_id)  # once: a cancellation clears the outbox
        if ven is None or not ven.registered:
            return None
        while True:
            msg = await store.peek_next(target.ven_id)
            if msg is None or msg.seq is None:
                return None
            marker = msg.kind == DISTRIBUTE and not msg.body
            built: m.DistributeEvent | None = None
            if marker:
                built = await distribute_for(self.ctx, ven.ven_id, new_request_id())
                body = encode(built)
            else:
                body = msg.body.encode()
            if ven.xml_signature and self.engine.signatures.signer is not None:
                body = await self.engine.signatures.sign(body)
            try:
                sent = await self.deliverer.send(target, ven, body)
                await self._handle_reply(ven, sent)
            except DeliveryFailed as exc:
                return f"{msg.kind}: {exc}"
            if not await store.ack_delivered(held.lease, msg.seq):
                log.warning("VEN %s acknowledged %s, but this process's lease was lost or "
                            "the message is gone: it may be delivered again", ven.ven_id,
                            msg.kind)
            self.delivered += 1
            await contact(self.ctx, ven)
            if built is not None:
                await self._rearm_if_changed(ven.ven_id, built)
            if held.lease.attempts:
                renewed = await store.renew_push_lease(held.lease, held.lease.until, 0)
                held.lease = renewed or held.lease

    async def _failed(self, lease: PushLease, reason: str) -> None:
        """Keep the lease until the retry time, with the failure counted in it."""
        self.failures += 1
        attempts = lease.attempts + 1
        delay = self.policy.backoff(attempts)
        log.info("%s delivery to VEN %s failed (attempt %d, retry in %.1f s): %s",
                 self.deliverer.transport, lease.ven_id, attempts, delay, reason)
        await self.ctx.store.renew_push_lease(lease, time.time() + delay, attempts)

    async def _handle_reply(self, ven: Ven, sent: Sent) -> None:
        """The VEN's synchronous reply, through the engine as a VEN-initiated message."""
        if not sent.reply.strip():
            return
        service = service_of(sent.reply)
        if service is None:
            raise DeliveryFailed("the VEN's reply is not an OpenADR payload")
        fingerprint = sent.peer_fingerprint
        if fingerprint is None and sent.peer_verified:
            fingerprint = ven.fingerprint
        reply = await self.engine.handle(service, sent.reply, fingerprint)
        if reply.status != 200:
            raise DeliveryFailed(f"the VEN's reply was not accepted ({reply.kind})")

    async def _rearm_if_changed(self, ven_id: str, sent: m.DistributeEvent) -> None:
        """Events that changed while the distribute was in flight: owed again."""
        now = self.ctx.clock()
        current = await self.ctx.store.events_for_ven(ven_id, now)
        again = distribute("", self.ctx.vtn_id, current, now)
        if _event_state(again) != _event_state(sent):
            await self.ctx.store.commit(Batch(distribute_to=[ven_id]))
