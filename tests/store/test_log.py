"""The event log: sequence numbers.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

import asyncio

from registry.discovery import LogQuery
from registry.models import LogEntry
from registry.port import SERVICE, Batch
from tests.store.support import T0, Opener


async def test_log_seq_is_strictly_increasing_and_gap_free_under_concurrency(
    open_store: Opener,
) -> None:
    one, two = await open_store(), await open_store()
    assert await one.last_seq() == 0

    def batch(i: int) -> Batch:
        return Batch(log=[LogEntry(kind="test", at=T0, data={"i": i, "j": j}) for j in range(2)])

    results = await asyncio.gather(*[s.commit(batch(i)) for i in range(25) for s in (one, two)])
    seqs = [e.seq for r in results for e in r]
    assert all(r[0].seq is not None and r[1].seq == r[0].seq + 1 for r in results)
    assert sorted(seqs) == list(range(1, 101))  # unique, no gaps
    log = await two.read_log(limit=1000)
    assert [e.seq for e in log] == list(range(1, 101))
    assert await one.last_seq() == 100
    assert [e.seq for e in await one.read_log(after=98)] == [99, 100]
    await one.commit(Batch(log=[LogEntry(kind="x", at=T0, ven_id="v1", data={"ok": True})]))
    [mine] = await two.read_log(ven_id="v1")
    assert mine.seq == 101 and mine.data == {"ok": True}


async def test_wait_log_wakes_and_the_entry_is_read_in_scope(open_store: Opener) -> None:
    """wait_log is only a wake-up (a change stream on a replica set, else the poll); what
    a node commits is then read by another node's find_log."""
    reader, writer = await open_store(), await open_store()
    before = await reader.last_seq()
    entry = LogEntry(kind="test.wake", at=T0, data={"n": 1})
    seen, _ = await asyncio.gather(reader.wait_log(0, 0.05),
                                   writer.commit(Batch(log=[entry])))
    assert isinstance(seen, int) and seen >= 0
    seen = await reader.wait_log(seen, 0.05)
    got = await reader.find_log(LogQuery(after=before, kind=["test.wake"]), SERVICE)
    assert [e.data for e in got] == [{"n": 1}]
