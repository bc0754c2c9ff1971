"""DER reads: per VEN, typed lists, discovery (side API), stats, and the user PATCH."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from registry.discovery import DerBrief, DerPatch, DerStats, DiscoveryQuery, Page
from registry.models import Der, DerStatus
from registry.port.scope import Scope


@dataclass(frozen=True, slots=True)
class DerRef:
    """The few DER fields the report-update hot path needs (no full document)."""

    device_id: str
    resource_id: str
    aggregator_id: str | None
    account_id: str | None
    status: DerStatus


@dataclass(slots=True)
class DerQuery:
    """Typed DER filter (the core subset; the side API extends it)."""

    ven_id: str | None = None
    device_class: list[str] | None = None
    device_type: list[str] | None = None
    aggregator_id: str | None = None
    account_id: str | None = None
    liveness: list[str] | None = None
    limit: int = 1000
    after_device_id: str | None = None  # keyset pagination on device_id


class DerStore(Protocol):
    async def get_der(self, device_id: str, scope: Scope) -> Der | None: ...
    async def ders_of_ven(self, ven_id: str) -> list[Der]: ...
    async def der_refs_of_ven(self, ven_id: str) -> list[DerRef]: ...
    async def list_ders(self, query: DerQuery, scope: Scope) -> list[Der]: ...
    async def count_ders(self, scope: Scope) -> int: ...

    # discovery (side API); see registry.discovery for the query, plan and cursor
    async def find_ders(self, query: DiscoveryQuery, scope: Scope) -> Page:
        """One keyset page of DERs matching the query inside the scope (geo: distance_m)."""
        ...

    async def der_briefs(self, query: DiscoveryQuery, scope: Scope) -> list[DerBrief]:
        """Every DER matching the filters of ``query`` in the scope, in device_id order,
        as :class:`DerBrief` (paging, sort and projection of the query are ignored)."""
        ...

    async def der_stats(self, scope: Scope) -> DerStats: ...

    async def patch_der(
        self, device_id: str, patch: DerPatch, scope: Scope, *, actor: str,
        if_version: int | None = None,
    ) -> Der | None:
        """Change user-owned fields atomically, bump version, log ``der.changed``.

        None when the DER is not visible in the scope; :class:`Conflict` when
        ``if_version`` is given and no longer current.
        """
        ...
