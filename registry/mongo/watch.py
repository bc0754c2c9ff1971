"""Change streams: one watch on the ``log`` collection per process, used as a wake-up
for the API's SSE stream (``wait_log``) instead of reading the log every 0.5 s.

Only where the server has change streams (a replica set or mongos, registry.mongo.caps);
elsewhere, and while the watch is down (a failover, a network error: it reconnects with
backoff), ``wait_log`` sleeps the poll interval, as before. Even when watching, a waiter
wakes at least every ``SAFETY_S`` and reads: a missed notification costs latency, never
an entry (the entries themselves are always read with ``find_log``, in the caller's
scope).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pymongo.errors import PyMongoError

from registry.mongo.conn import MongoConn

log = logging.getLogger(__name__)
SAFETY_S = 5.0
PIPELINE = [{"$match": {"operationType": "insert"}},
            {"$project": {"operationType": 1, "fullDocument.seq": 1}}]


class SeqSignal:
    """The newest seq a watch reported, and waiters for a newer one."""

    def __init__(self) -> None:
        self.seq = 0
        self.live = False  # a watch is open: waiters may wait longer than the poll
        self._moved = asyncio.Event()

    def update(self, seq: int) -> None:
        if seq > self.seq:
            self.seq = seq
            self._moved.set()
            self._moved = asyncio.Event()

    async def wait(self, seen: int, poll_s: float) -> int:
        if self.seq > seen:
            return self.seq
        moved = self._moved
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(moved.wait(), SAFETY_S if self.live else poll_s)
        return self.seq


class LogWatcher:
    """The process's watch on the log (started on first use, stopped with the store)."""

    def __init__(self, conn: MongoConn) -> None:
        self.conn = conn
        self.signal = SeqSignal()
        self._task: asyncio.Task[None] | None = None

    async def wait(self, seen: int, poll_s: float) -> int:
        if not self.conn.caps.change_streams:
            await asyncio.sleep(poll_s)
            return seen
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return await self.signal.wait(seen, poll_s)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with await self.conn.col("log").watch(PIPELINE) as stream:
                    self.signal.live, backoff = True, 0.5
                    async for change in stream:
                        seq = (change.get("fullDocument") or {}).get("seq")
                        if isinstance(seq, int):
                            self.signal.update(seq)
            except asyncio.CancelledError:
                raise
            except (PyMongoError, Exception) as exc:  # noqa: BLE001 - reconnect on anything
                log.warning("log change stream down (%s); polling until it is back", exc)
            self.signal.live = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
