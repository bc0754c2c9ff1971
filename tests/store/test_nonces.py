"""Signature nonces (ReplayProtect).

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.store.support import Opener


async def test_remember_nonce_refuses_a_replay_until_it_expires(open_store: Opener) -> None:
    one, two = await open_store(), await open_store()
    soon = datetime.now(UTC) + timedelta(minutes=5)
    assert await one.remember_nonce("v1", "n1", soon) is True
    assert await one.remember_nonce("v1", "n1", soon) is False
    assert await two.remember_nonce("v1", "n1", soon) is False  # shared by every process
    assert await two.remember_nonce("v2", "n1", soon) is True  # per VEN
    past = datetime.now(UTC) - timedelta(seconds=5)
    assert await one.remember_nonce("v1", "old", past) is True
    assert await two.remember_nonce("v1", "old", soon) is True  # expired: usable again
    assert await one.remember_nonce("v1", "old", soon) is False
    raced = await asyncio.gather(*[s.remember_nonce("v3", "n", soon)
                                   for _ in range(4) for s in (one, two)])
    assert sorted(raced) == [False] * 7 + [True]
    await one.remember_nonce("v3", "gone", past)
    raced = await asyncio.gather(*[s.remember_nonce("v3", "gone", soon)
                                   for _ in range(4) for s in (one, two)])
    assert sorted(raced) == [False] * 7 + [True]
