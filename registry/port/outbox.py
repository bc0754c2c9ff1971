"""The per-VEN outbox of messages waiting for the VEN's next poll."""

from __future__ import annotations

from typing import Protocol

from registry.models import OutboxMessage


class OutboxStore(Protocol):
    async def claim_next(self, ven_id: str) -> OutboxMessage | None:
        """Remove and return the oldest pending message of a VEN (exactly once)."""
        ...

    async def pending_count(self, ven_id: str) -> int: ...
