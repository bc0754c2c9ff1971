"""The store port: what the VTN needs from persistence, independent of the database.

Two adapters implement it (``registry.sqlite_store`` and ``registry.mongo_store``).
Every read that can reveal DERs takes a :class:`Scope`, so tenant filtering happens
inside the query, never after it. Writes go through :meth:`Store.commit` with a
:class:`Batch`, which the adapter applies atomically: the service layer computes a whole
reaction to a message first, then persists it in one step (nothing half-written).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel

from registry.discovery import DerBrief, DerPatch, DerStats, DiscoveryQuery, LogQuery, Page
from registry.models import (
    Der,
    DerStatus,
    LastValue,
    Liveness,
    LivenessChange,
    LogEntry,
    OutboxMessage,
    ReportRequestRecord,
    ReportRequestState,
    ReportSpec,
    ReportSubscription,
    SubscriptionState,
    Ven,
    View,
)


class StoreError(Exception):
    """Base class of store failures."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now; the caller should retry later."""


class Conflict(StoreError):
    """A conditional write lost (stale version, duplicate key)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Who is asking. Applied inside every store query that can reveal DERs or VENs."""

    role: str = "service"  # service | aggregator | prosumer
    aggregator_id: str | None = None
    account_id: str | None = None

    @property
    def is_service(self) -> bool:
        return self.role == "service"


SERVICE = Scope()
ANY = "*"  # Batch.announce: no expectation about the previous hash


def views_in_scope(scope: Scope, aggregator_id: str | None) -> tuple[bool, str | None]:
    """Which aggregator's views a caller may list: (anything visible?, aggregator filter).

    Prosumers have no views; an aggregator sees only its own, whatever it asks for.
    """
    if scope.role == "prosumer":
        return False, None
    if scope.role == "aggregator":
        return aggregator_id in (None, scope.aggregator_id), scope.aggregator_id
    return True, aggregator_id


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


@dataclass(slots=True)
class PollState:
    """What answering an oadrPoll needs, read in one round trip (no VEN document)."""

    ven_id: str
    registered: bool
    fingerprint: str | None
    liveness: Liveness
    pending: bool  # the outbox may hold something (True when unsure)


@dataclass(frozen=True, slots=True)
class DerRef:
    """The few DER fields the report-update hot path needs (no full document)."""

    device_id: str
    resource_id: str
    aggregator_id: str | None
    account_id: str | None
    status: DerStatus


@dataclass(slots=True)
class DerStatusUpdate:
    """Status and telemetry from one oadrUpdateReport, applied to one DER in place."""

    device_id: str
    at: datetime
    status: DerStatus | None = None
    values: dict[str, LastValue] = field(default_factory=dict)
    max_capacity: float | None = None
    available_capacity: float | None = None


@dataclass(slots=True)
class Batch:
    """One atomic unit of work."""

    vens: list[Ven] = field(default_factory=list)
    # metadata upserts keyed on (ven_id, resource_id); existing device_id, status and
    # availability flags are kept
    ders: list[Der] = field(default_factory=list)
    delete_ders: list[str] = field(default_factory=list)  # device_ids
    der_status: list[DerStatusUpdate] = field(default_factory=list)
    report_specs: list[ReportSpec] = field(default_factory=list)
    # replace all report specs of these VENs with the ones above
    replace_report_specs_of: list[str] = field(default_factory=list)
    report_requests: list[ReportRequestRecord] = field(default_factory=list)
    # (ven_id, report_request_id, new state)
    report_request_states: list[tuple[str, str, ReportRequestState]] = field(default_factory=list)
    # cancel every open report request of these VENs
    cancel_report_requests_of: list[str] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)
    clear_outbox_of: list[str] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)
    # (ven_id, at): Store.mark_online inside this unit, after the log entries above (a
    # registration is one transaction instead of two)
    mark_online: list[tuple[str, datetime]] = field(default_factory=list)
    # discovery over OpenADR: views, reports VENs asked the VTN for, announcements
    views: list[View] = field(default_factory=list)  # upsert on (aggregator_id, name)
    delete_views: list[tuple[str, str]] = field(default_factory=list)
    subscriptions: list[ReportSubscription] = field(default_factory=list)
    subscription_states: list[tuple[str, str, SubscriptionState]] = field(default_factory=list)
    cancel_subscriptions_of: list[str] = field(default_factory=list)  # ven_ids
    # (ven_id, expected hash or ANY, new hash): the metadata last announced to a VEN;
    # a stale expectation makes the whole commit fail with Conflict (two processes
    # noticing the same change announce it once)
    announce: list[tuple[str, str | None, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(
            getattr(self, name)
            for name in self.__slots__  # type: ignore[attr-defined]
        )


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


class Store(Protocol):
    """Persistence port used by the service layer, the scheduler and the CLI."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # VENs
    async def get_ven(self, ven_id: str) -> Ven | None: ...
    async def poll_state(self, ven_id: str) -> PollState | None:
        """The hot path of every poll: registration, binding, liveness, outbox non-empty."""
        ...

    async def find_ven_by_name(self, ven_name: str) -> Ven | None: ...
    async def find_ven_by_fingerprint(self, fingerprint: str) -> Ven | None: ...
    async def list_vens(self, scope: Scope) -> list[Ven]: ...

    # DERs
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

    async def find_ven(self, ven_id: str, scope: Scope) -> Ven | None: ...
    async def find_log(self, query: LogQuery, scope: Scope) -> list[LogEntry]:
        """Log entries after ``query.after``, filtered by kind/VEN/device and the scope."""
        ...

    # reports
    async def report_specs_of_ven(self, ven_id: str) -> list[ReportSpec]: ...
    async def get_report_request(
        self, ven_id: str, report_request_id: str
    ) -> ReportRequestRecord | None: ...
    async def report_requests_of_ven(self, ven_id: str) -> list[ReportRequestRecord]: ...

    # writes
    async def commit(self, batch: Batch) -> list[LogEntry]:
        """Apply the batch atomically; returns the log entries with their seq numbers."""
        ...

    # outbox
    async def claim_next(self, ven_id: str) -> OutboxMessage | None:
        """Remove and return the oldest pending message of a VEN (exactly once)."""
        ...

    async def pending_count(self, ven_id: str) -> int: ...

    # event log
    async def read_log(
        self, after: int = 0, limit: int = 100, ven_id: str | None = None
    ) -> list[LogEntry]: ...

    async def last_seq(self) -> int:
        """Sequence number of the newest log entry (0 when empty)."""
        ...

    # liveness
    async def touch(self, contacts: dict[str, datetime]) -> None:
        """Record last contact times (coalesced flush; no state transitions)."""
        ...

    async def mark_online(self, ven_id: str, now: datetime) -> LivenessChange | None:
        """Bring a VEN (and its DERs) online; logs the transition once if it happened."""
        ...

    async def sweep_liveness(
        self, now: datetime, stale_after_polls: float, offline_after_polls: float
    ) -> list[LivenessChange]:
        """Mark silent VENs and their DERs stale / offline, logging each transition once."""
        ...

    # export
    def iter_all(self, kind: str) -> AsyncIterator[BaseModel]:
        """Stream every record of one kind (ven, der, report_spec, report_request, view,
        report_subscription, outbox, log) as its model, in a stable order, without loading
        them all (registry.transfer).
        """
        ...

    # discovery over OpenADR
    async def vens_with_role(self, role: str) -> list[Ven]: ...
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

    # XML signatures (ReplayProtect)
    async def remember_nonce(self, ven_id: str, nonce: str, expires: datetime) -> bool:
        """Record a signature nonce until ``expires``; False if it was seen already.

        Shared by every VTN process on the store, so a replay to another worker fails too.
        """
        ...
