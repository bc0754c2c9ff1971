"""Discovery over OpenADR: saved views, report subscriptions, metadata announcements."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from registry.models import ReportSubscription, View
from registry.port.scope import Scope


class ViewStore(Protocol):
    async def list_views(self, scope: Scope, aggregator_id: str | None = None) -> list[View]:
        """Saved views visible in the scope (an aggregator sees only its own)."""
        ...

    async def get_view(self, aggregator_id: str, name: str) -> View | None: ...
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
