"""The event log: strictly increasing sequence numbers, read as tails."""

from __future__ import annotations

from typing import Protocol

from registry.discovery import LogQuery
from registry.models import LogEntry
from registry.port.scope import Scope


class LogStore(Protocol):
    async def read_log(
        self, after: int = 0, limit: int = 100, ven_id: str | None = None
    ) -> list[LogEntry]: ...

    async def last_seq(self) -> int:
        """Sequence number of the newest log entry (0 when empty)."""
        ...

    async def find_log(self, query: LogQuery, scope: Scope) -> list[LogEntry]:
        """Log entries after ``query.after``, filtered by kind/VEN/device and the scope."""
        ...

    async def wait_log(self, seen: int, poll_s: float) -> int:
        """Wait until entries newer than ``seen`` may exist (a change stream where the
        store has one, else just ``poll_s``); returns the value to pass next time. A
        wake-up only: the caller still reads with find_log, in its scope."""
        ...
