"""MongoDB adapter of the store port (``pymongo.AsyncMongoClient``).

The adapter composes the entity modules of this package (one per entity, as on SQLite):
each holds functions over a :class:`registry.mongo.conn.MongoConn`, and ``commit`` calls
their ``write_*`` functions inside one unit of work. Documents: ``registry.mongo.docs``;
indexes: ``registry.mongo.schema``.

Atomicity
    On a replica set or mongos, ``commit``, ``mark_online`` and ``sweep_liveness`` run in
    one multi-document transaction. On a standalone server (nx-27017, a lone mongod) there
    are no transactions: the batch is applied as ordered, idempotent writes (upserts keyed
    on natural keys; outbox and log inserts keyed on pre-reserved sequence numbers, so a
    retried insert is a duplicate that is ignored), data first and the log last (DR
    events: deliveries and markers before the event document, registry.mongo.events). A crash
    in the middle leaves the earlier writes applied; the VEN retries its message and the
    writes are re-applied harmlessly.
    Every cross-process race is settled by one conditional single-document write:
    ``claim_next`` is ``find_one_and_delete`` (sorted by seq), a liveness transition is an
    update whose filter names the old state, and sequence numbers come from ``$inc`` on a
    counter document.

Event-log sequence numbers
    Unique and strictly increasing (the counter hands out each number once). Gap-free in
    transaction mode (an aborted transaction rolls the counter back, and a concurrent
    committer waits on the counter document, so commit order is seq order). Without
    transactions a number is lost only if a writer dies between reserving it and inserting
    the entry (or a reservation is retried after a timeout). Readers never skip an entry
    still being written: ``read_log`` stops before a hole unless the entry after it was
    written more than ``hole_grace_s`` ago, when the hole is taken to be permanent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

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
from registry.mongo import (
    delivery,
    ders,
    discovery,
    dispatches,
    events,
    groups,
    leases,
    liveness,
    log,
    migrations,
    nonces,
    ops,
    opts,
    outbox,
    overview,
    reports,
    schema,
    transfer,
    vens,
    views,
)
from registry.mongo.conn import Doc, MongoConn, Session
from registry.mongo.watch import LogWatcher
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
from vtn.config import StoreConfig


class MongoStore:
    """Store port over one MongoDB database."""

    def __init__(self, url: str, cfg: StoreConfig | None = None) -> None:
        self.conn = MongoConn(url, cfg)
        self.url = url
        self.cfg = self.conn.cfg
        self.db_name = self.conn.db_name
        self.watcher = LogWatcher(self.conn)

    @property
    def transactions(self) -> bool:
        return self.conn.transactions

    @property
    def hole_grace_s(self) -> float:
        return self.conn.hole_grace_s

    @property
    def db(self) -> AsyncDatabase[Doc]:
        return self.conn.db

    def col(self, name: str) -> AsyncCollection[Doc]:
        return self.conn.col(name)

    # --- lifecycle ------------------------------------------------------------

    async def open(self) -> None:
        await self.conn.open()
        await self.init_indexes()
        await migrations.migrate(self.conn)  # numbered, recorded in meta (v1: updated_us)
        await self.conn.detect()
        await groups.migrate_views(self.conn)  # views are DER groups now

    async def close(self) -> None:
        await self.watcher.close()
        await self.conn.close()

    async def init_indexes(self) -> None:
        """Create every index of registry.mongo.schema (a no-op for the ones that exist)."""
        await schema.init_indexes(self.conn)

    async def check(self) -> dict[str, Any]:
        """Reachability, server version and which declared indexes are missing."""
        out: dict[str, Any] = {"reachable": False, "database": self.db_name}
        try:
            info = await self.conn.retry(lambda: self.db.command("buildInfo"))
            out.update(reachable=True, server_version=info.get("version"))
            out["server"] = info.get("process", "mongod")
            out["transactions"] = self.transactions
            out["capabilities"] = self.conn.caps.as_dict()
            out.update(await schema.index_report(self.conn))
        except StoreUnavailable as exc:
            out["error"] = str(exc)
        return out

    # --- operators (registry.port.ops) -----------------------------------------

    async def fleet_summary(self) -> FleetSummary:
        return await ops.fleet_summary(self.conn)

    async def schema_version(self) -> int:
        return await migrations.version_of(self.conn)

    # --- VENs -----------------------------------------------------------------

    async def get_ven(self, ven_id: str) -> Ven | None:
        return await vens.find_one(self.conn, {"_id": ven_id})

    async def poll_state(self, ven_id: str) -> PollState | None:
        return await vens.poll_state(self.conn, ven_id)

    async def find_ven_by_name(self, ven_name: str) -> Ven | None:
        return await vens.find_one(self.conn, {"ven_name": ven_name})

    async def find_ven_by_fingerprint(self, fingerprint: str) -> Ven | None:
        return await vens.find_one(self.conn, {"fingerprint": fingerprint})

    async def list_vens(self, scope: Scope) -> list[Ven]:
        return await vens.list_vens(self.conn, scope)

    async def find_ven(self, ven_id: str, scope: Scope = SERVICE) -> Ven | None:
        return await vens.find_ven(self.conn, ven_id, scope)

    async def vens_with_role(self, role: str) -> list[Ven]:
        return await vens.vens_where(self.conn, {"role": role})

    # --- DERs -----------------------------------------------------------------

    async def get_der(self, device_id: str, scope: Scope) -> Der | None:
        return await ders.get_der(self.conn, device_id, scope)

    async def ders_of_ven(self, ven_id: str) -> list[Der]:
        return await ders.ders_of_ven(self.conn, ven_id)

    async def der_refs_of_ven(self, ven_id: str) -> list[DerRef]:
        return await ders.der_refs_of_ven(self.conn, ven_id)

    async def list_ders(self, query: DerQuery, scope: Scope = SERVICE) -> list[Der]:
        return await ders.list_ders(self.conn, query, scope)

    async def count_ders(self, scope: Scope = SERVICE) -> int:
        return await ders.count_ders(self.conn, scope)

    async def find_ders(self, query: DiscoveryQuery, scope: Scope = SERVICE) -> Page:
        return await discovery.find_ders(self.conn, query, scope)

    async def der_briefs(self, query: DiscoveryQuery, scope: Scope = SERVICE) -> list[DerBrief]:
        return await discovery.der_briefs(self.conn, query, scope)

    async def der_stats(self, scope: Scope = SERVICE) -> DerStats:
        return await ders.der_stats(self.conn, scope)

    async def fleet_overview(self, scope: Scope, since: datetime, kinds: list[str]
                             ) -> FleetOverview:
        return await overview.fleet_overview(self.conn, scope, since, kinds)

    async def der_points(self, query: DiscoveryQuery, scope: Scope) -> list[DerPoint]:
        return await overview.der_points(self.conn, query, scope)

    async def recent_log(self, query: LogQuery, scope: Scope) -> list[LogEntry]:
        return await overview.recent_log(self.conn, query, scope)

    async def outbox_pending(self, ven_ids: list[str], scope: Scope) -> dict[str, int]:
        return await overview.outbox_pending(self.conn, ven_ids, scope)

    async def patch_der(
        self, device_id: str, patch: DerPatch, scope: Scope = SERVICE, *, actor: str,
        if_version: int | None = None,
    ) -> Der | None:
        return await ders.patch_der(self.conn, device_id, patch, scope, actor, if_version)

    # --- reports --------------------------------------------------------------

    async def report_specs_of_ven(self, ven_id: str) -> list[ReportSpec]:
        return await reports.report_specs_of_ven(self.conn, ven_id)

    async def get_report_request(
        self, ven_id: str, report_request_id: str
    ) -> ReportRequestRecord | None:
        return await reports.get_report_request(self.conn, ven_id, report_request_id)

    async def report_requests_of_ven(self, ven_id: str) -> list[ReportRequestRecord]:
        return await reports.report_requests_of_ven(self.conn, ven_id)

    async def due_report_requests(
        self, now: datetime, limit: int = 100
    ) -> list[ReportRequestRecord]:
        return await reports.due_report_requests(self.conn, now, limit)

    async def telemetry_history(
        self, device_ids: list[str], start: datetime, end: datetime
    ) -> list[TelemetryBucket]:
        return await reports.telemetry_history(self.conn, device_ids, start, end)

    # --- demand response (registry.mongo.events, registry.mongo.opts) -------------

    async def get_event(self, event_id: str, scope: Scope) -> DrEvent | None:
        return await events.get_event(self.conn, event_id, scope)

    async def list_events(self, query: EventQuery, scope: Scope) -> list[DrEvent]:
        return await events.list_events(self.conn, query, scope)

    async def open_events(self) -> list[DrEvent]:
        return await events.open_events(self.conn)

    async def resolve_targets(self, targets: EventTargets, scope: Scope
                              ) -> list[EventDelivery]:
        return await events.resolve_targets(self.conn, targets, scope)

    async def deliveries_of_event(self, event_id: str, scope: Scope) -> list[EventDelivery]:
        return await events.deliveries_of_event(self.conn, event_id, scope)

    async def events_for_ven(self, ven_id: str, now: datetime
                             ) -> list[tuple[DrEvent, EventDelivery]]:
        return await events.events_for_ven(self.conn, ven_id, now)

    async def get_delivery(self, event_id: str, ven_id: str) -> EventDelivery | None:
        return await events.get_delivery(self.conn, event_id, ven_id)

    async def opts_of_ven(self, ven_id: str) -> list[OptSchedule]:
        return await opts.opts_of_ven(self.conn, ven_id)

    async def get_opt(self, ven_id: str, opt_id: str) -> OptSchedule | None:
        return await opts.get_opt(self.conn, ven_id, opt_id)

    async def opts_covering(self, at: datetime, scope: Scope,
                            opt_type: OptType | None = None) -> list[OptSchedule]:
        return await opts.opts_covering(self.conn, at, scope, opt_type)

    # --- writes ---------------------------------------------------------------

    async def commit(self, batch: Batch) -> list[LogEntry]:
        if not batch:
            return []
        c = self.conn
        return await c.unit(lambda s: _apply(c, batch, s))

    # --- outbox ---------------------------------------------------------------

    async def claim_next(self, ven_id: str) -> OutboxMessage | None:
        return await outbox.claim_next(self.conn, ven_id)

    async def pending_count(self, ven_id: str) -> int:
        return await outbox.pending_count(self.conn, ven_id)

    # --- delivery to push / XMPP VENs (registry.mongo.delivery) -----------------

    async def delivery_candidates(
        self, transport: str, now: float, limit: int
    ) -> list[DeliveryTarget]:
        return await delivery.delivery_candidates(self.conn, transport, now, limit)

    async def delivery_target(self, ven_id: str) -> DeliveryTarget | None:
        return await delivery.delivery_target(self.conn, ven_id)

    async def acquire_push_lease(
        self, ven_id: str, holder: str, now: float, ttl_s: float
    ) -> PushLease | None:
        return await delivery.acquire_push_lease(self.conn, ven_id, holder, now, ttl_s)

    async def renew_push_lease(
        self, lease: PushLease, until: float, attempts: int | None = None
    ) -> PushLease | None:
        return await delivery.renew_push_lease(self.conn, lease, until, attempts)

    async def release_push_lease(self, lease: PushLease) -> None:
        await delivery.release_push_lease(self.conn, lease)

    async def peek_next(self, ven_id: str) -> OutboxMessage | None:
        return await delivery.peek_next(self.conn, ven_id)

    async def ack_delivered(self, lease: PushLease, seq: int) -> bool:
        return await delivery.ack_delivered(self.conn, lease, seq)

    # --- event log --------------------------------------------------------------

    async def read_log(
        self, after: int = 0, limit: int = 100, ven_id: str | None = None
    ) -> list[LogEntry]:
        return await log.read_log(self.conn, after, limit, ven_id)

    async def last_seq(self) -> int:
        return await log.last_seq(self.conn)

    async def wait_log(self, seen: int, poll_s: float) -> int:
        return await self.watcher.wait(seen, poll_s)

    async def find_log(self, query: LogQuery, scope: Scope = SERVICE) -> list[LogEntry]:
        return await log.find_log(self.conn, query, scope)

    # --- liveness ---------------------------------------------------------------

    async def touch(self, contacts: dict[str, datetime]) -> None:
        await liveness.touch(self.conn, contacts)

    async def mark_online(self, ven_id: str, now: datetime) -> LivenessChange | None:
        c = self.conn
        return await c.unit(lambda s: liveness.mark_online(c, ven_id, now, s))

    async def sweep_liveness(
        self, now: datetime, stale_after_polls: float, offline_after_polls: float,
        *, shard: Shard | None = None, fence: Fencing = None,
    ) -> list[LivenessChange]:
        return await liveness.sweep_liveness(
            self.conn, now, stale_after_polls, offline_after_polls, shard, fence
        )

    # --- job leases (registry.mongo.leases) ---------------------------------------------

    async def acquire_lease(self, job: str, holder: str, ttl_s: float, now: datetime
                            ) -> Lease | None:
        return await leases.acquire(self.conn, job, holder, ttl_s, now)

    async def renew_lease(self, lease: Lease, ttl_s: float, now: datetime) -> Lease | None:
        return await leases.renew(self.conn, lease, ttl_s, now)

    async def release_lease(self, lease: Lease) -> None:
        await leases.release(self.conn, lease)

    async def list_leases(self, prefix: str) -> list[Lease]:
        return await leases.list_leases(self.conn, prefix)

    # --- views, subscriptions, announcements ------------------------------------------

    async def subscriptions_of_ven(self, ven_id: str) -> list[ReportSubscription]:
        return await views.subscriptions_of_ven(self.conn, ven_id)

    async def claim_due_reports(
        self, now: datetime, limit: int = 100
    ) -> list[ReportSubscription]:
        return await views.claim_due_reports(self.conn, now, limit)

    async def announced_hash(self, ven_id: str) -> str | None:
        return await views.announced_hash(self.conn, ven_id)

    # --- DER groups (registry.mongo.groups) -----------------------------------------

    async def list_groups(self, scope: Scope, aggregator_id: str | None = None
                          ) -> list[Group]:
        return await groups.list_groups(self.conn, scope, aggregator_id)

    async def get_group(self, group_id: str, scope: Scope) -> Group | None:
        return await groups.get_group(self.conn, group_id, scope)

    async def group_named(self, aggregator_id: str | None, name: str, scope: Scope
                          ) -> Group | None:
        return await groups.group_named(self.conn, aggregator_id, name, scope)

    async def group_static(self, group_id: str, kind: MemberKind, after: str | None = None,
                           limit: int = 1000) -> list[str]:
        return await groups.group_static(self.conn, group_id, kind, after, limit)

    async def group_page(self, group: Group, scope: Scope, after: str | None = None,
                         limit: int = 1000) -> list[GroupMember]:
        return await groups.group_page(self.conn, group, scope, after, limit)

    async def group_tally(self, group: Group, scope: Scope, in_event: set[str],
                          opted_vens: set[str], opted_devices: set[str]) -> list[TallyRow]:
        return await groups.group_tally(self.conn, group, scope, in_event, opted_vens,
                                  opted_devices)

    async def group_briefs(self, group: Group, scope: Scope) -> list[DerBrief]:
        return await groups.group_briefs(self.conn, group, scope)

    async def visible_device_ids(self, device_ids: list[str], scope: Scope) -> set[str]:
        return await groups.visible_device_ids(self.conn, device_ids, scope)

    # --- group dispatches (registry.port.dispatches) -----------------------------------

    async def get_dispatch(self, dispatch_id: str, scope: Scope) -> GroupDispatch | None:
        return await dispatches.get_dispatch(self.conn, dispatch_id, scope)

    async def list_dispatches(self, query: DispatchQuery, scope: Scope
                              ) -> list[GroupDispatch]:
        return await dispatches.list_dispatches(self.conn, query, scope)

    async def open_dispatches(self) -> list[GroupDispatch]:
        return await dispatches.open_dispatches(self.conn)

    async def dispatch_members(self, dispatch_id: str, scope: Scope
                               ) -> list[DispatchMember]:
        return await dispatches.dispatch_members(self.conn, dispatch_id, scope)

    async def dispatch_events(self, dispatch_id: str) -> list[DrEvent]:
        return await dispatches.dispatch_events(self.conn, dispatch_id)

    async def dispatch_deliveries(self, dispatch_id: str) -> list[EventDelivery]:
        return await dispatches.dispatch_deliveries(self.conn, dispatch_id)

    # --- signature nonces (ReplayProtect) ---------------------------------------------

    async def remember_nonce(self, ven_id: str, nonce: str, expires: datetime) -> bool:
        return await nonces.remember_nonce(self.conn, ven_id, nonce, expires)

    # --- bulk (export / import) -------------------------------------------------

    def iter_all(self, kind: str) -> AsyncIterator[BaseModel]:
        """Stream every record of one kind (see registry.transfer), in a stable order."""
        return transfer.iter_all(self.conn, kind)

    async def import_records(self, kind: str, records: list[BaseModel]) -> int:
        """Exact, idempotent restore of dumped records (see registry.mongo.transfer)."""
        return await transfer.import_records(self.conn, kind, records)


async def _apply(c: MongoConn, batch: Batch, s: Session) -> list[LogEntry]:
    """Same order as the SQLite adapter; the log goes last (see module docstring)."""
    await leases.check_fence(c, batch.fence, s)  # first: a lost lease aborts all
    await views.write_views(c, batch, s)  # a stale announcement aborts all
    if batch.groups or batch.delete_groups or batch.group_members:
        await groups.write_groups(c, batch, s)  # a stale group version aborts all too
    if batch.event_expect or batch.event_status:
        await events.check(c, batch, s)  # a stale event expectation aborts all too
    if batch.dispatches:  # conditional on rev: the lock of a re-dispatch
        await dispatches.write_dispatch_docs(c, batch, s)
    if batch.vens:
        await vens.write_vens(c, batch.vens, s)
    await reports.write_specs(c, batch, s)
    if batch.ders:
        await ders.write_ders(c, batch.ders, s)
    if batch.delete_ders:
        await ders.delete_ders(c, batch.delete_ders, s)
    if batch.der_status:
        await ders.write_status(c, batch.der_status, s)
    await reports.write_requests(c, batch, s)
    await reports.write_telemetry(c, batch, s)
    await outbox.write_outbox(c, batch, s)
    if batch.opts:
        await opts.write_opts(c, batch, s)
    if batch.drop_delivery_targets or batch.delivery_targets:
        await delivery.write_targets(c, batch, s)
    # deliveries and markers, then the event documents (see registry.mongo.events)
    await events.write_shares(c, batch, s)
    if batch.events or batch.deliveries or batch.delete_deliveries:
        await events.write_event_docs(c, batch, s)
    await dispatches.write_members(c, batch, s)
    entries = await log.append_log(c, batch.log, s)
    for ven_id, at in batch.mark_online:
        await liveness.mark_online(c, ven_id, at, s)
    return entries
