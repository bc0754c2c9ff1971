"""Delivery to push / XMPP VENs: targets, per-VEN leases with fencing tokens, acks.

Each test runs against both backends (the ``open_store`` fixture of conftest.py); two
store instances on one database stand for two VTN processes.
"""

from __future__ import annotations

import asyncio
import time

from registry.port import Batch, DeliveryTarget, Store
from tests.store.support import Opener, msg

URL = "http://127.0.0.1:9/ven/a"


def target(ven_id: str, transport: str = "simpleHttp") -> DeliveryTarget:
    return DeliveryTarget(ven_id, transport, f"http://127.0.0.1:9/ven/{ven_id}")


async def test_candidates_are_targets_of_the_transport_with_something_queued(
    store: Store,
) -> None:
    await store.commit(Batch(delivery_targets=[target("a"), target("b"),
                                               target("x", "xmpp")]))
    await store.commit(Batch(outbox=[msg("a", 1), msg("x", 1), msg("pull", 1)]))
    now = time.time()
    assert await store.delivery_candidates("simpleHttp", now, 10) == [target("a")]
    assert await store.delivery_candidates("xmpp", now, 10) == [target("x", "xmpp")]
    assert await store.delivery_target("b") == target("b")
    # a live lease hides the VEN; an expired one does not
    lease = await store.acquire_push_lease("a", "p1", now, 30)
    assert lease is not None
    assert await store.delivery_candidates("simpleHttp", now, 10) == []
    assert await store.delivery_candidates("simpleHttp", now + 31, 10) == [target("a")]
    # registering again for pull drops the target (its lease row stays harmless)
    await store.commit(Batch(drop_delivery_targets=["a"]))
    assert await store.delivery_candidates("simpleHttp", now + 31, 10) == []
    assert await store.delivery_target("a") is None


async def test_re_registration_updates_the_address_and_keeps_the_lease(store: Store) -> None:
    await store.commit(Batch(delivery_targets=[target("a")], outbox=[msg("a", 1)]))
    lease = await store.acquire_push_lease("a", "p1", time.time(), 30)
    moved = DeliveryTarget("a", "simpleHttp", "https://ven.example.com/oadr")
    await store.commit(Batch(delivery_targets=[moved]))
    assert await store.delivery_target("a") == moved
    assert lease is not None and await store.renew_push_lease(lease, time.time() + 30) is not None


async def test_one_lease_per_ven_across_processes_and_takeover_raises_the_token(
    open_store: Opener,
) -> None:
    one, two = await open_store(), await open_store()
    now = time.time()
    got = await asyncio.gather(*[s.acquire_push_lease("a", f"p{i}", now, 30)
                                 for i, s in enumerate([one, two] * 5)])
    winners = [g for g in got if g is not None]
    assert len(winners) == 1 and winners[0].token >= 1
    first = winners[0]
    # held: nobody (not even the holder) takes it again before it expires
    assert await two.acquire_push_lease("a", "other", now + 29, 30) is None
    # expired (the holder died): taken over with a higher token
    second = await two.acquire_push_lease("a", "other", now + 31, 30)
    assert second is not None and second.token > first.token and second.holder == "other"
    # the old holder has lost it: no renewal
    assert await one.renew_push_lease(first, now + 60) is None
    # release expires it at once and keeps the token growing
    await two.release_push_lease(second)
    third = await one.acquire_push_lease("a", "p9", now + 32, 30)
    assert third is not None and third.token > second.token


async def test_renew_carries_the_retry_schedule(store: Store) -> None:
    now = time.time()
    lease = await store.acquire_push_lease("a", "p1", now, 30)
    assert lease is not None and lease.attempts == 0
    later = await store.renew_push_lease(lease, now + 5, attempts=3)
    assert later is not None and later.attempts == 3 and later.until == now + 5
    # the next holder sees how many attempts failed before it
    after = await store.acquire_push_lease("a", "p2", now + 6, 30)
    assert after is not None and after.attempts == 3


async def test_peek_leaves_the_message_and_ack_needs_the_current_lease(
    open_store: Opener,
) -> None:
    one, two = await open_store(), await open_store()
    await one.commit(Batch(outbox=[msg("a", 1), msg("a", 2)]))
    now = time.time()
    lease = await one.acquire_push_lease("a", "p1", now, 30)
    assert lease is not None
    first = await one.peek_next("a")
    assert first is not None and first.body == "<m1/>" and first.seq is not None
    assert (await two.peek_next("a")) == first  # still there for everyone
    # the lease expires and another process takes over: the old holder's ack fails
    successor = await two.acquire_push_lease("a", "p2", now + 31, 30)
    assert successor is not None
    assert await one.ack_delivered(lease, first.seq) is False
    assert await one.pending_count("a") == 2
    assert await two.ack_delivered(successor, first.seq) is True
    assert await two.ack_delivered(successor, first.seq) is False  # once
    nxt = await one.peek_next("a")
    assert nxt is not None and nxt.body == "<m2/>"


async def test_distribute_marker_is_peeked_like_any_message(store: Store) -> None:
    await store.commit(Batch(distribute_to=["a"]))
    await store.commit(Batch(distribute_to=["a"]))  # still one
    lease = await store.acquire_push_lease("a", "p1", time.time(), 30)
    marker = await store.peek_next("a")
    assert marker is not None and marker.kind == "oadrDistributeEvent" and marker.body == ""
    assert lease is not None and marker.seq is not None
    assert await store.ack_delivered(lease, marker.seq)
    await store.commit(Batch(distribute_to=["a"]))  # a new one can be written after
    assert await store.pending_count("a") == 1
