"""Export: every record of one kind, streamed (registry.transfer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from pydantic import BaseModel


class TransferStore(Protocol):
    def iter_all(self, kind: str) -> AsyncIterator[BaseModel]:
        """Stream every record of one kind (ven, der, report_spec, report_request, group,
        group_member, report_subscription, event, event_delivery, opt_schedule, dispatch,
        dispatch_member, outbox, log) as its model, in a stable order, without loading
        them all (registry.transfer).
        """
        ...
