"""Discovery over OpenADR: report subscriptions and metadata announcements."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from registry.models import ReportSubscription


class ViewStore(Protocol):
    """Views are DER groups now (registry.port.groups); what stays here is the rest of
    discovery over OpenADR."""

    async def subscriptions_of_ven(self, ven_id: str) -> list[ReportSubscription]: ...
    async def claim_due_reports(self, now: datetime, limit: int = 100
                                ) -> list[ReportSubscription]:
        """Active report subscriptions due at ``now``, each advanced to its next due time.

        The advance is conditional per subscription, so when several processes claim at
        once every delivery is claimed by exactly one of them. Returned as claimed
        (``deliveries`` counts this one; state done when it was the last).
        """
        ...

    async def announced_hash(self, ven_id: str) -> str | None: ...
