"""VEN (and DER) liveness: contacts, coming online, the sweep to stale / offline."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from registry.models import LivenessChange, LogEntry
from registry.port.leases import Fencing, Shard


def liveness_entry(
    change: LivenessChange, now: datetime, aggregator_id: str | None, account_id: str | None
) -> LogEntry:
    """The event-log entry of a VEN's liveness transition (one shape for every store)."""
    return LogEntry(
        kind="ven.liveness",
        at=now,
        ven_id=change.ven_id,
        aggregator_id=aggregator_id,
        account_id=account_id,
        data={"from": change.old.value, "to": change.new.value, "ders": change.ders},
    )


class LivenessStore(Protocol):
    async def touch(self, contacts: dict[str, datetime]) -> None:
        """Record last contact times (coalesced flush; no state transitions)."""
        ...

    async def mark_online(self, ven_id: str, now: datetime) -> LivenessChange | None:
        """Bring a VEN (and its DERs) online; logs the transition once if it happened."""
        ...

    async def sweep_liveness(
        self, now: datetime, stale_after_polls: float, offline_after_polls: float,
        *, shard: Shard | None = None, fence: Fencing = None,
    ) -> list[LivenessChange]:
        """Mark silent VENs and their DERs stale / offline, logging each transition once.

        shard: only that shard's VENs (registry.port.leases); fence: stop with LeaseLost
        once the lease is taken over (what was swept before stays committed)."""
        ...
