"""SQLite adapter of the store port: the embedded default.

The adapter composes the entity modules of this package (``vens``, ``ders``,
``discovery``, ``reports``, ``outbox``, ``log``, ``liveness``, ``views``, ``groups``, ``nonces``,
``transfer``): each holds plain functions over the ``sqlite3`` connection, and
``commit`` calls their ``write_*`` functions inside one transaction. Calls run on the
event loop thread: single-row statements take microseconds, which is cheaper than a
thread hop. Schema and pragmas: ``registry.sqlite.schema`` and ``registry.sqlite.conn``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from registry.discovery import DerBrief, DerPatch, DerStats, DiscoveryQuery, LogQuery, Page
from registry.events import DrEvent, EventDelivery, EventTargets, OptSchedule, OptType
from registry.group_dispatch import DispatchMember, GroupDispatch
from registry.group_model import Group, GroupMember, MemberKind, TallyRow
from registry.models import (
    Der,
    LivenessChange,
    LogEntry,
    OutboxMessage,
    ReportRequestRecord,
    ReportSpec,
    ReportSubscription,
    Ven,
)
from registry.port import (
    SERVICE,
    Batch,
    DeliveryTarget,
    DerQuery,
    DerRef,
    EventQuery,
    PollState,
    PushLease,
    Scope,
    StoreUnavailable,
    TelemetryBucket,
)
from registry.port.dispatches import DispatchQuery
from registry.port.leases import Fencing, Lease, Shard
from registry.port.ops import FleetSummary
from registry.port.overview import DerPoint, FleetOverview
from registry.sqlite import (
    delivery,
    ders,
    discovery,
    dispatches,
    events,
    groups,
    leases,
    liveness,
    log,
    ops,
    opts,
    outbox,
    overview,
    reports,
    transfer,
    vens,
    views,
)
from registry.sqlite.conn import connect, immediate
from registry.sqlite.errors import translate_errors
from registry.sqlite.migrations import version_of
from registry.sqlite.nonces import Nonces


@translate_errors  # disk full, I/O errors: StoreUnavailable (registry.sqlite.errors)
class SqliteStore:
    """Store port over one SQLite file."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[Batch, asyncio.Future[list[LogEntry]]]] = []
        self._nonces = Nonces()

    # --- lifecycle ------------------------------------------------------------

    async def open(self) -> None:
        self._db = connect(self.path, self.synchronous)

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreUnavailable("store is not open")
        return self._db

    # --- operators (registry.port.ops) -----------------------------------------

    async def fleet_summary(self) -> FleetSummary:
        return ops.fleet_summary(self.db, self.path)

    async def schema_version(self) -> int:
        return version_of(self.db)

    # --- VENs -----------------------------------------------------------------

    async def get_ven(self, ven_id: str) -> Ven | None:
        return vens.get_ven(self.db, ven_id)

    async def poll_state(self, ven_id: str) -> PollState | None:
        return vens.poll_state(self.db, ven_id)

    async def find_ven_by_name(self, ven_name: str) -> Ven | None:
        return vens.find_ven_by_name(self.db, ven_name)

    async def find_ven_by_fingerprint(self, fingerprint: str) -> Ven | None:
        return vens.find_ven_by_fingerprint(self.db, fingerprint)

    async def list_vens(self, scope: Scope) -> list[Ven]:
        return vens.list_vens(self.db, scope)

    async def find_ven(self, ven_id: str, scope: Scope = SERVICE) -> Ven | None:
        return vens.find_ven(self.db, ven_id, scope)

    async def vens_with_role(self, role: str) -> list[Ven]:
        return vens.vens_with_role(self.db, role)

    # --- DERs -----------------------------------------------------------------

    async def get_der(self, device_id: str, scope: Scope) -> Der | None:
        return ders.get_der(self.db, device_id, scope)

    async def ders_of_ven(self, ven_id: str) -> list[Der]:
        return ders.ders_of_ven(self.db, ven_id)

    async def der_refs_of_ven(self, ven_id: str) -> list[DerRef]:
        return ders.der_refs_of_ven(self.db, ven_id)

    async def list_ders(self, query: DerQuery, scope: Scope = SERVICE) -> list[Der]:
        return ders.list_ders(self.db, query, scope)

    async def count_ders(self, scope: Scope = SERVICE) -> int:
        return ders.count_ders(self.db, scope)

    async def find_ders(self, query: DiscoveryQuery, scope: Scope = SERVICE) -> Page:
        return discovery.find_ders(self.db, query, scope)

    async def der_briefs(self, query: DiscoveryQuery, scope: Scope = SERVICE) -> list[DerBrief]:
        return discovery.der_briefs(self.db, query, scope)

    async def der_stats(self, scope: Scope = SERVICE) -> DerStats:
        return ders.der_stats(self.db, scope)

    async def fleet_overview(self, scope: Scope, since: datetime, kinds: list[str]
                             ) -> FleetOverview:
        return overview.fleet_overview(self.db, scope, since, kinds)

    async def der_points(self, query: DiscoveryQuery, scope: Scope) -> list[DerPoint]:
        return overview.der_points(self.db, query, scope)

    async def recent_log(self, query: LogQuery, scope: Scope) -> list[LogEntry]:
        return overview.recent_log(self.db, query, scope)

    async def outbox_pending(self, ven_ids: list[str], scope: Scope) -> dict[str, int]:
        return overview.outbox_pending(self.db, ven_ids, scope)

    async def patch_der(
        self, device_id: str, patch: DerPatch, scope: Scope = SERVICE, *, actor: str,
        if_version: int | None = None,
    ) -> Der | None:
        return ders.patch_der(self.db, device_id, patch, scope, actor, if_version)

    # --- reports --------------------------------------------------------------

    async def report_specs_of_ven(self, ven_id: str) -> list[ReportSpec]:
        return reports.report_specs_of_ven(self.db, ven_id)

    async def get_report_request(
        self, ven_id: str, report_request_id: str
    ) -> ReportRequestRecord | None:
        return reports.get_report_request(self.db, ven_id, report_request_id)

    async def report_requests_of_ven(self, ven_id: str) -> list[ReportRequestRecord]:
        return reports.report_requests_of_ven(self.db, ven_id)

    async def due_report_requests(
        self, now: datetime, limit: int = 100
    ) -> list[ReportRequestRecord]:
        return reports.due_report_requests(self.db, now, limit)

    async def telemetry_history(
        self, device_ids: list[str], start: datetime, end: datetime
    ) -> list[TelemetryBucket]:
        return reports.telemetry_history(self.db, device_ids, start, end)

    # --- demand response (registry.sqlite.events, registry.sqlite.opts) -----------

    async def get_event(self, event_id: str, scope: Scope) -> DrEvent | None:
        return events.get_event(self.db, event_id, scope)

    async def list_events(self, query: EventQuery, scope: Scope) -> list[DrEvent]:
        return events.list_events(self.db, query, scope)

    async def open_events(self) -> list[DrEvent]:
        return events.open_events(self.db)

    async def resolve_targets(self, targets: EventTargets, scope: Scope
                              ) -> list[EventDelivery]:
        return events.resolve_targets(self.db, targets, scope)

    async def deliveries_of_event(self, event_id: str, scope: Scope) -> list[EventDelivery]:
        return events.deliveries_of_event(self.db, event_id, scope)

    async def events_for_ven(self, ven_id: str, now: datetime
                             ) -> list[tuple[DrEvent, EventDelivery]]:
        return events.events_for_ven(self.db, ven_id, now)

    async def get_delivery(self, event_id: str, ven_id: str) -> EventDelivery | None:
        return events.get_delivery(self.db, event_id, ven_id)

    async def opts_of_ven(self, ven_id: str) -> list[OptSchedule]:
        return opts.opts_of_ven(self.db, ven_id)

    async def get_opt(self, ven_id: str, opt_id: str) -> OptSchedule | None:
        return opts.get_opt(self.db, ven_id, opt_id)

    async def opts_covering(self, at: datetime, scope: Scope,
                            opt_type: OptType | None = None) -> list[OptSchedule]:
        return opts.opts_covering(self.db, at, scope, opt_type)

    # --- writes ---------------------------------------------------------------

    async def commit(self, batch: Batch) -> list[LogEntry]:
        """Group commit: the batches committed in one event-loop turn (concurrent
        requests) share one transaction, each in its own savepoint so a failing batch
        fails alone. The caller resumes once its batch is committed (durable as before);
        COMMIT's page writes are paid once per group instead of once per request."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[LogEntry]] = loop.create_future()
        self._pending.append((batch, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        results: list[list[LogEntry] | Exception] = []
        try:
            db = self.db
            with immediate(db):
                if len(pending) == 1:
                    results.append(_apply(db, pending[0][0]))
                else:
                    for batch, _ in pending:
                        db.execute("SAVEPOINT batch")
                        try:
                            results.append(_apply(db, batch))
                        except Exception as exc:
                            if not db.in_transaction:  # the error ended it (disk full)
                                raise
                            db.execute("ROLLBACK TO batch")
                            results.append(exc)
                        db.execute("RELEASE batch")
        except Exception as exc:
            for _, future in pending:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(pending, results, strict=True):
            if future.done():  # the caller was cancelled; its batch is committed anyway
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    # --- outbox ---------------------------------------------------------------

    async def claim_next(self, ven_id: str) -> OutboxMessage | None:
        return outbox.claim_next(self.db, ven_id)

    async def pending_count(self, ven_id: str) -> int:
        return outbox.pending_count(self.db, ven_id)

    # --- delivery to push / XMPP VENs (registry.sqlite.delivery) ----------------

    async def delivery_candidates(
        self, transport: str, now: float, limit: int
    ) -> list[DeliveryTarget]:
        return delivery.delivery_candidates(self.db, transport, now, limit)

    async def delivery_target(self, ven_id: str) -> DeliveryTarget | None:
        return delivery.delivery_target(self.db, ven_id)

    async def acquire_push_lease(
        self, ven_id: str, holder: str, now: float, ttl_s: float
    ) -> PushLease | None:
        return delivery.acquire_push_lease(self.db, ven_id, holder, now, ttl_s)

    async def renew_push_lease(
        self, lease: PushLease, until: float, attempts: int | None = None
    ) -> PushLease | None:
        return delivery.renew_push_lease(self.db, lease, until, attempts)

    async def release_push_lease(self, lease: PushLease) -> None:
        delivery.release_push_lease(self.db, lease)

    async def peek_next(self, ven_id: str) -> OutboxMessage | None:
        return delivery.peek_next(self.db, ven_id)

    async def ack_delivered(self, lease: PushLease, seq: int) -> bool:
        return delivery.ack_delivered(self.db, lease, seq)

    # --- event log --------------------------------------------------------------

    async def read_log(
        self, after: int = 0, limit: int = 100, ven_id: str | None = None
    ) -> list[LogEntry]:
        return log.read_log(self.db, after, limit, ven_id)

    async def last_seq(self) -> int:
        return log.last_seq(self.db)

    async def wait_log(self, seen: int, poll_s: float) -> int:
        await asyncio.sleep(poll_s)  # no change notifications in SQLite: poll
        return seen

    async def find_log(self, query: LogQuery, scope: Scope = SERVICE) -> list[LogEntry]:
        return log.find_log(self.db, query, scope)

    # --- liveness ---------------------------------------------------------------

    async def touch(self, contacts: dict[str, datetime]) -> None:
        liveness.touch(self.db, contacts)

    async def mark_online(self, ven_id: str, now: datetime) -> LivenessChange | None:
        db = self.db
        with immediate(db):
            return liveness.mark_online(db, ven_id, now)

    async def sweep_liveness(
        self, now: datetime, stale_after_polls: float, offline_after_polls: float,
        *, shard: Shard | None = None, fence: Fencing = None,
    ) -> list[LivenessChange]:
        return await liveness.sweep_liveness(
            self.db, now, stale_after_polls, offline_after_polls, shard, fence
        )

    # --- job leases (registry.sqlite.leases) -------------------------------------------

    async def acquire_lease(self, job: str, holder: str, ttl_s: float, now: datetime
                            ) -> Lease | None:
        return leases.acquire(self.db, job, holder, ttl_s, now)

    async def renew_lease(self, lease: Lease, ttl_s: float, now: datetime) -> Lease | None:
        return leases.renew(self.db, lease, ttl_s, now)

    async def release_lease(self, lease: Lease) -> None:
        leases.release(self.db, lease)

    async def list_leases(self, prefix: str) -> list[Lease]:
        return leases.list_leases(self.db, prefix)

    # --- views, subscriptions, announcements ------------------------------------------

    async def subscriptions_of_ven(self, ven_id: str) -> list[ReportSubscription]:
        return views.subscriptions_of_ven(self.db, ven_id)

    async def claim_due_reports(
        self, now: datetime, limit: int = 100
    ) -> list[ReportSubscription]:
        return views.claim_due_reports(self.db, now, limit)

    async def announced_hash(self, ven_id: str) -> str | None:
        return views.announced_hash(self.db, ven_id)

    # --- DER groups (registry.sqlite.groups) ----------------------------------------

    async def list_groups(self, scope: Scope, aggregator_id: str | None = None
                          ) -> list[Group]:
        return groups.list_groups(self.db, scope, aggregator_id)

    async def get_group(self, group_id: str, scope: Scope) -> Group | None:
        return groups.get_group(self.db, group_id, scope)

    async def group_named(self, aggregator_id: str | None, name: str, scope: Scope
                          ) -> Group | None:
        return groups.group_named(self.db, aggregator_id, name, scope)

    async def group_static(self, group_id: str, kind: MemberKind, after: str | None = None,
                           limit: int = 1000) -> list[str]:
        return groups.group_static(self.db, group_id, kind, after, limit)

    async def group_page(self, group: Group, scope: Scope, after: str | None = None,
                         limit: int = 1000) -> list[GroupMember]:
        return groups.group_page(self.db, group, scope, after, limit)

    async def group_tally(self, group: Group, scope: Scope, in_event: set[str],
                          opted_vens: set[str], opted_devices: set[str]) -> list[TallyRow]:
        return groups.group_tally(self.db, group, scope, in_event, opted_vens,
                                  opted_devices)

    async def group_briefs(self, group: Group, scope: Scope) -> list[DerBrief]:
        return groups.group_briefs(self.db, group, scope)

    async def visible_device_ids(self, device_ids: list[str], scope: Scope) -> set[str]:
        return groups.visible_device_ids(self.db, device_ids, scope)

    # --- group dispatches (registry.port.dispatches) -----------------------------------

    async def get_dispatch(self, dispatch_id: str, scope: Scope) -> GroupDispatch | None:
        return dispatches.get_dispatch(self.db, dispatch_id, scope)

    async def list_dispatches(self, query: DispatchQuery, scope: Scope
                              ) -> list[GroupDispatch]:
        return dispatches.list_dispatches(self.db, query, scope)

    async def open_dispatches(self) -> list[GroupDispatch]:
        return dispatches.open_dispatches(self.db)

    async def dispatch_members(self, dispatch_id: str, scope: Scope
                               ) -> list[DispatchMember]:
        return dispatches.dispatch_members(self.db, dispatch_id, scope)

    async def dispatch_events(self, dispatch_id: str) -> list[DrEvent]:
        return dispatches.dispatch_events(self.db, dispatch_id)

    async def dispatch_deliveries(self, dispatch_id: str) -> list[EventDelivery]:
        return dispatches.dispatch_deliveries(self.db, dispatch_id)

    # --- signature nonces (ReplayProtect) ---------------------------------------------

    async def remember_nonce(self, ven_id: str, nonce: str, expires: datetime) -> bool:
        return self._nonces.remember(self.db, ven_id, nonce, expires)

    # --- bulk (export / import) -------------------------------------------------

    def iter_table(self, table: str) -> Iterable[tuple[Any, ...]]:
        return transfer.iter_table(self.db, table)

    async def iter_all(self, kind: str) -> AsyncIterator[BaseModel]:
        """Stream every record of one kind (export), in a stable order, cursor by cursor."""
        cursor = self.db.execute(transfer.ITER_SQL[kind])
        parse = transfer.parse
        try:
            while rows := cursor.fetchmany(1000):
                for row in rows:
                    yield parse(kind, row)
        finally:
            cursor.close()


def _apply(db: sqlite3.Connection, batch: Batch) -> list[LogEntry]:
    """One batch inside the caller's transaction, in a fixed order."""
    leases.check_fence(db, batch.fence)  # first: work under a lost lease aborts all
    views.write_views(db, batch)  # a stale announcement aborts all
    if batch.groups or batch.delete_groups or batch.group_members:
        groups.write_groups(db, batch)  # a stale group version aborts all too
    if batch.event_expect or batch.event_status:
        events.check_expectations(db, batch)
    if batch.dispatch_expect:
        dispatches.check_dispatches(db, batch)
    if batch.vens:
        vens.write_vens(db, batch.vens)
    if batch.replace_report_specs_of or batch.report_specs:
        reports.write_specs(db, batch)
    if batch.ders:
        ders.write_ders(db, batch.ders)
    if batch.delete_ders:
        ders.delete_ders(db, batch.delete_ders)
    if batch.der_status:
        ders.write_status(db, batch.der_status)
    if (batch.cancel_report_requests_of or batch.report_requests or batch.report_request_states
            or batch.report_request_updates or batch.report_request_seen):
        reports.write_requests(db, batch)
    if batch.telemetry or batch.prune_telemetry_before is not None:
        reports.write_telemetry(db, batch)
    if batch.clear_outbox_of or batch.outbox:
        outbox.write_outbox(db, batch)
    if batch.opts:
        opts.write_opts(db, batch)
    if batch.drop_delivery_targets or batch.delivery_targets:
        delivery.write_targets(db, batch)
    events.write_events(db, batch)  # after clear_outbox_of: a fresh marker stays
    if batch.dispatches or batch.dispatch_members:
        dispatches.write_dispatches(db, batch)
    entries = log.append_log(db, batch.log)
    for ven_id, at in batch.mark_online:
        liveness.mark_online(db, ven_id, at)
    return entries
