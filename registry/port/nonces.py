"""XML signature nonces (ReplayProtect), shared by every VTN process on the store."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class NonceStore(Protocol):
    async def remember_nonce(self, ven_id: str, nonce: str, expires: datetime) -> bool:
        """Record a signature nonce until ``expires``; False if it was seen already.

        Shared by every VTN process on the store, so a replay to another worker fails too.
        """
        ...
