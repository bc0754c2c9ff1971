"""The outbox: FIFO per VEN, each message delivered once.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

import asyncio

from registry.port import Batch, Store
from tests.store.support import Opener, msg


async def test_outbox_is_fifo_per_ven_and_can_be_cleared(store: Store) -> None:
    await store.commit(Batch(outbox=[msg("a", 1), msg("b", 1), msg("a", 2)]))
    await store.commit(Batch(outbox=[msg("a", 3)]))
    assert await store.pending_count("a") == 3
    first = await store.claim_next("a")
    assert first is not None and first.body == "<m1/>" and first.seq is not None
    await store.commit(Batch(clear_outbox_of=["b"]))
    assert await store.pending_count("b") == 0 and await store.claim_next("b") is None
    bodies = [m.body for m in [await store.claim_next("a"), await store.claim_next("a")] if m]
    assert bodies == ["<m2/>", "<m3/>"]
    assert await store.claim_next("a") is None


async def test_claim_next_delivers_each_message_once_to_racing_consumers(
    open_store: Opener,
) -> None:
    one, two = await open_store(), await open_store()
    await one.commit(Batch(outbox=[msg("a", i) for i in range(40)]))
    claims = await asyncio.gather(*[s.claim_next("a") for _ in range(30) for s in (one, two)])
    bodies = [m.body for m in claims if m is not None]
    assert sorted(bodies) == sorted(f"<m{i}/>" for i in range(40))  # all, none twice
    assert await two.pending_count("a") == 0
