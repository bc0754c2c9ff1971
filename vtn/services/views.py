"""Discovery over OpenADR: the VTN's own EiReport side for aggregator VENs.

An aggregator VEN is offered one METADATA report per view (reportSpecifierID = view
name) with one description per DER (rID = device_id) and aggregate rIDs. It asks for
reports with oadrCreateReport; each request becomes a persisted
:class:`ReportSubscription` that the scheduler delivers as oadrUpdateReport through the
VEN's outbox. Every read goes through the aggregator's scope, so the VEN only ever
learns about DERs with its aggregator_id. The wire format is documented in
docs/osb-profile.md ("Aggregator profile").
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from registry import views as registry_views
from registry.discovery import DerBrief
from registry.group_model import Group
from registry.models import (
    DeviceClass,
    Liveness,
    OutboxMessage,
    ReportSubscription,
    SubscriptionState,
    Ven,
    VenRole,
    new_id,
)
from registry.port import ANY, Batch, Conflict, StoreError
from vtn.codec import encode
from vtn.codec import messages as m
from vtn.services.base import Context, OadrError, log, new_request_id

logger = logging.getLogger(__name__)

STATUS_REPORT = "TELEMETRY_STATUS"
METADATA_STATUS_REPORT = "METADATA_TELEMETRY_STATUS"
DER_REPORT_TYPE = "x-resourceStatus"
AGG_PREFIX = "agg."
# aggregate rIDs: metric -> (reportType, has a power itemBase)
AGGREGATES = {
    "online": ("x-derOnlineCount", False),
    "max_capacity": ("x-maxCapacity", True),
    "available_capacity": ("x-availableCapacity", True),
}
POWER = m.ItemBase("powerReal", "RealPower", "W", "none", hertz=50.0, voltage=230.0, ac=True)


def aggregate_rids() -> list[tuple[str, str, DeviceClass | None]]:
    """(rID, metric, device class or None for all) for every aggregate a view offers."""
    out: list[tuple[str, str, DeviceClass | None]] = []
    for metric in AGGREGATES:
        out.append((f"{AGG_PREFIX}{metric}", metric, None))
        out.extend((f"{AGG_PREFIX}{metric}.{c.value}", metric, c) for c in DeviceClass)
    return out


AGGREGATE_RIDS = {rid: (metric, cls) for rid, metric, cls in aggregate_rids()}


def is_aggregator(ven: Ven) -> bool:
    return ven.role == VenRole.AGGREGATOR and bool(ven.aggregator_id)


ONLINE = Liveness.ONLINE.value


def is_online(der: DerBrief) -> bool:
    return der.liveness == ONLINE


# --- metadata (oadrRegisterReport) -----------------------------------------------------


@dataclass(slots=True)
class ViewMembers:
    view: Group
    ders: list[DerBrief]

    @property
    def r_ids(self) -> set[str]:
        return {d.device_id for d in self.ders} | set(AGGREGATE_RIDS)


async def all_members(ctx: Context, ven: Ven) -> list[ViewMembers]:
    assert ven.aggregator_id is not None
    out = []
    for view in await registry_views.views_of(ctx.store, ven.aggregator_id):
        ders = await registry_views.offered_members(ctx.store, view)
        if ders is not None:  # else an invalid stored view, skipped with a warning
            out.append(ViewMembers(view, ders))
    return out


def metadata_hash(views: list[ViewMembers]) -> str:
    """Changes exactly when what the METADATA reports describe changes."""
    h = hashlib.sha256()
    for vm in views:
        h.update(f"\x1e{vm.view.name}".encode())
        for d in vm.ders:  # device_id order
            loc = f"{d.lat},{d.lon}" if d.lat is not None else ""
            h.update(
                f"\x1f{d.device_id}\x1f{d.resource_id}\x1f{d.ven_id}\x1f{d.device_class}"
                f"\x1f{loc}".encode()
            )
    return h.hexdigest()


def _sampling(ctx: Context) -> m.SamplingRate:
    cfg = ctx.config.views
    return m.SamplingRate(
        timedelta(seconds=cfg.min_period_s), timedelta(seconds=cfg.max_period_s), False
    )


def der_description(der: DerBrief, sampling: m.SamplingRate) -> m.ReportDescription:
    return m.ReportDescription(
        r_id=der.device_id,
        report_type=DER_REPORT_TYPE,
        reading_type="x-notApplicable",
        resource_id=der.resource_id,
        source_ven_id=der.ven_id,
        subject_mrids=[der.device_class],
        item=POWER,
        sampling_rate=sampling,
        location=(der.lat, der.lon) if der.lat is not None and der.lon is not None else None,
    )


def aggregate_descriptions(sampling: m.SamplingRate) -> list[m.ReportDescription]:
    return [
        m.ReportDescription(
            r_id=rid,
            report_type=AGGREGATES[metric][0],
            reading_type="x-notApplicable",
            subject_mrids=[cls.value] if cls else [],
            item=POWER if AGGREGATES[metric][1] else None,
            sampling_rate=sampling,
        )
        for rid, metric, cls in aggregate_rids()
    ]


def metadata_message(ctx: Context, ven: Ven, views: list[ViewMembers]) -> m.RegisterReport:
    now = ctx.clock()
    sampling = _sampling(ctx)
    aggregates = aggregate_descriptions(sampling)
    reports = [
        m.Report(
            report_specifier_id=vm.view.name,
            report_name=METADATA_STATUS_REPORT,
            created_date_time=now,
            report_request_id="0",
            descriptions=[der_description(d, sampling) for d in vm.ders] + aggregates,
        )
        for vm in views
    ]
    return m.RegisterReport(request_id=new_request_id(), reports=reports, ven_id=ven.ven_id)


async def off_loop(build: Callable[..., OutboxMessage], *args: Any) -> OutboxMessage:
    """Build and encode a big message (thousands of DERs) in a worker thread, so the event
    loop keeps answering polls meanwhile (the GIL is handed back every few ms)."""
    return await asyncio.to_thread(build, *args)


def offer_of(ctx: Context, ven: Ven, views: list[ViewMembers]) -> OutboxMessage:
    return outbox_of(ven, metadata_message(ctx, ven, views))


def delivery_of(ctx: Context, ven: Ven, sub: ReportSubscription,
                ders: list[DerBrief]) -> OutboxMessage:
    return outbox_of(ven, update_message(ctx, ven, sub, ders))


def outbox_of(ven: Ven, message: m.Message) -> OutboxMessage:
    return OutboxMessage(
        ven_id=ven.ven_id, kind=m.ELEMENT_NAMES[type(message)], body=encode(message).decode()
    )


async def announcement(ctx: Context, ven: Ven) -> tuple[OutboxMessage, str, int]:
    """The oadrRegisterReport describing the VEN's views now, its hash and DER count."""
    views = await all_members(ctx, ven)
    message = await off_loop(offer_of, ctx, ven, views)
    return message, metadata_hash(views), sum(len(v.ders) for v in views)


async def refresh_announcements(ctx: Context) -> int:
    """Queue a new oadrRegisterReport for every aggregator VEN whose views changed.

    The new offer replaces the old one, so the reports the VEN requested end and it asks
    again (as after any oadrRegisterReport).

    Conditional on the hash announced before, so when several VTN processes notice the
    same change only one of them queues it. Returns how many VENs were re-announced.
    """
    sent = 0
    for ven in await ctx.store.vens_with_role(VenRole.AGGREGATOR.value):
        if not ven.registered or not is_aggregator(ven):
            continue
        try:
            sent += await refresh_one(ctx, ven)
        except StoreError:
            raise  # the store is down for everyone: the job fails and runs again
        except Exception as exc:  # one aggregator's failure must not stop the others
            logger.warning("views of %s not refreshed: %r", ven.ven_id, exc)
    return sent


async def refresh_one(ctx: Context, ven: Ven) -> int:
    """Re-announce one aggregator VEN's views if they changed: 1 if queued, else 0."""
    store = ctx.store
    views = await all_members(ctx, ven)
    new = metadata_hash(views)
    old = await store.announced_hash(ven.ven_id)
    if new == old:
        return 0
    message = await off_loop(offer_of, ctx, ven, views)
    entry = log(
        "views.announced", ven, ctx.clock(),
        views=[v.view.name for v in views], ders=sum(len(v.ders) for v in views),
    )
    try:
        # the new offer replaces the old one: reports requested on it end
        await store.commit(Batch(announce=[(ven.ven_id, old, new)], outbox=[message],
                                 cancel_subscriptions_of=[ven.ven_id], log=[entry]))
        return 1
    except Conflict:
        return 0  # another process announced it


def announce_on_registration(batch: Batch, ven: Ven, message: OutboxMessage, digest: str,
                             ders: int, now: datetime) -> None:
    """Registration (and re-registration) always announces; old subscriptions end."""
    batch.outbox.append(message)
    batch.announce.append((ven.ven_id, ANY, digest))
    batch.cancel_subscriptions_of.append(ven.ven_id)
    batch.log.append(log("views.announced", ven, now, ders=ders))


# --- oadrCreateReport / oadrCancelReport from an aggregator ----------------------------


async def _view_members(ctx: Context, ven: Ven, name: str,
                        cache: dict[str, ViewMembers]) -> ViewMembers:
    if name not in cache:
        assert ven.aggregator_id is not None
        view = await registry_views.find_view(ctx.store, ven.aggregator_id, name)
        ders = None if view is None else await registry_views.offered_members(ctx.store, view)
        if view is None or ders is None:
            raise OadrError(m.INVALID_ID, f"no report {name!r} was offered to this VEN")
        cache[name] = ViewMembers(view, ders)
    return cache[name]


async def create_subscriptions(
    ctx: Context, ven: Ven, requests: list[m.ReportRequest]
) -> tuple[list[ReportSubscription], bool]:
    """Validate report requests against the views; (subscriptions, metadata wanted).

    All or nothing: one bad request refuses the whole message.
    """
    now = ctx.clock()
    existing = {
        s.report_request_id for s in await ctx.store.subscriptions_of_ven(ven.ven_id)
        if s.state == SubscriptionState.ACTIVE
    }
    cache: dict[str, ViewMembers] = {}
    subs: list[ReportSubscription] = []
    seen: set[str] = set()
    metadata = False
    for rr in requests:
        if rr.report_request_id in existing or rr.report_request_id in seen:
            raise OadrError(m.INVALID_ID, f"reportRequestID {rr.report_request_id} in use")
        seen.add(rr.report_request_id)
        if rr.report_specifier_id == "METADATA":
            metadata = True
            continue
        vm = await _view_members(ctx, ven, rr.report_specifier_id, cache)
        wanted = [p.r_id for p in rr.specifier_payloads]
        unknown = [r for r in wanted if r not in vm.r_ids]
        if unknown:
            raise OadrError(m.INVALID_ID, f"rID {unknown[0]} is not in report "
                            f"{rr.report_specifier_id}")
        granularity = rr.granularity.total_seconds()
        if granularity < ctx.config.views.min_period_s:
            raise OadrError(
                m.INVALID_DATA,
                f"granularity below the minimum sampling period "
                f"(PT{ctx.config.views.min_period_s:g}S)",
            )
        start = max(rr.interval_start or now, now)
        until = None
        if rr.interval_duration is not None and rr.interval_duration.total_seconds() > 0:
            until = (rr.interval_start or now) + rr.interval_duration
            if until < now:
                raise OadrError(m.INVALID_DATA, "report interval is over")
        subs.append(
            ReportSubscription(
                ven_id=ven.ven_id,
                report_request_id=rr.report_request_id,
                report_specifier_id=rr.report_specifier_id,
                r_ids=list(dict.fromkeys(wanted)),
                granularity_s=granularity,
                report_back_duration_s=rr.report_back_duration.total_seconds(),
                next_due_at=start,
                until=until,
                created_at=now,
            )
        )
    return subs, metadata


async def subscribe(ctx: Context, ven: Ven, requests: list[m.ReportRequest]) -> list[str]:
    """Persist the requested reports; returns all open reportRequestIDs of the VEN."""
    subs, metadata = await create_subscriptions(ctx, ven, requests)
    now = ctx.clock()
    batch = Batch(subscriptions=subs)
    for s in subs:
        batch.log.append(
            log("report.subscribed", ven, now, actor="ven", report_request_id=s.report_request_id,
                view=s.report_specifier_id, r_ids=len(s.r_ids), granularity_s=s.granularity_s,
                report_back_duration_s=s.report_back_duration_s)
        )
    if metadata:
        message, digest, ders = await announcement(ctx, ven)
        batch.outbox.append(message)
        batch.announce.append((ven.ven_id, ANY, digest))
        batch.cancel_subscriptions_of.append(ven.ven_id)  # before the new ones are stored
        batch.log.append(log("views.announced", ven, now, ders=ders))
    if batch:
        await ctx.store.commit(batch)
    return await open_request_ids(ctx, ven)


async def open_request_ids(ctx: Context, ven: Ven) -> list[str]:
    return [
        s.report_request_id for s in await ctx.store.subscriptions_of_ven(ven.ven_id)
        if s.state == SubscriptionState.ACTIVE
    ]


async def unsubscribe(ctx: Context, ven: Ven, report_request_ids: list[str]) -> list[str]:
    """Cancel the VEN's report subscriptions; returns the reportRequestIDs still open."""
    open_ids = await open_request_ids(ctx, ven)
    unknown = [r for r in report_request_ids if r not in open_ids]
    if unknown:
        raise OadrError(m.INVALID_ID, f"unknown reportRequestID {unknown[0]}")
    now = ctx.clock()
    await ctx.store.commit(
        Batch(
            subscription_states=[
                (ven.ven_id, r, SubscriptionState.CANCELLED) for r in report_request_ids
            ],
            log=[
                log("report.unsubscribed", ven, now, actor="ven", report_request_id=r)
                for r in report_request_ids
            ],
        )
    )
    return [r for r in open_ids if r not in report_request_ids]


# --- delivery (oadrUpdateReport) -------------------------------------------------------


def status_payload(der: DerBrief) -> m.ReportPayload:
    s = der.status
    return m.ReportPayload(
        r_id=der.device_id,
        status=m.ResourceStatus(
            online=is_online(der),
            manual_override=bool(s.get("manual_override")),
            load_control={
                k: m.LoadControlValue(v["current"], v.get("min"), v.get("max"), v.get("normal"))
                for k, v in (s.get("load_control") or {}).items()
            },
        ),
    )


def aggregates_of(ders: list[DerBrief]) -> dict[str, float]:
    """Every aggregate rID's value in one pass: DERs online, Σ max capacity and Σ available
    capacity of the online ones, per device class and in total."""
    out = dict.fromkeys(AGGREGATE_RIDS, 0.0)
    online_rid, max_rid, avail_rid = (f"{AGG_PREFIX}{k}" for k in AGGREGATES)
    for d in ders:
        cls = d.device_class
        max_w = d.max_capacity or 0.0
        out[max_rid] += max_w
        out[f"{max_rid}.{cls}"] += max_w
        if d.liveness == ONLINE:
            avail_w = d.available_capacity or 0.0
            out[online_rid] += 1.0
            out[f"{online_rid}.{cls}"] += 1.0
            out[avail_rid] += avail_w
            out[f"{avail_rid}.{cls}"] += avail_w
    return out


def update_message(ctx: Context, ven: Ven, sub: ReportSubscription,
                   ders: list[DerBrief]) -> m.UpdateReport:
    now = ctx.clock()
    by_id = {d.device_id: d for d in ders}
    aggregates = aggregates_of(ders) if any(r in AGGREGATE_RIDS for r in sub.r_ids) else {}
    payloads: list[m.ReportPayload] = []
    for rid in sub.r_ids:
        if rid in aggregates:
            payloads.append(m.ReportPayload(r_id=rid, value=aggregates[rid]))
        elif (der := by_id.get(rid)) is not None:  # a DER that left the view is omitted
            payloads.append(status_payload(der))
    duration = timedelta(seconds=sub.granularity_s)
    report = m.Report(
        report_specifier_id=sub.report_specifier_id,
        report_name=STATUS_REPORT,
        created_date_time=now,
        report_request_id=sub.report_request_id,
        report_id=new_id(),
        dtstart=now,
        duration=duration,
        intervals=[m.ReportInterval(payloads, dtstart=now, duration=duration)] if payloads
        else [],
    )
    return m.UpdateReport(request_id=new_request_id(), reports=[report], ven_id=ven.ven_id)


async def deliver_due(ctx: Context) -> tuple[int, int]:
    """Claim due subscriptions and queue their oadrUpdateReports: (claimed, queued)."""
    store = ctx.store
    claimed = await store.claim_due_reports(ctx.clock(), ctx.config.views.batch)
    if not claimed:
        return 0, 0
    vens: dict[str, Ven | None] = {}
    cache: dict[tuple[str, str], ViewMembers | None] = {}
    batch = Batch()
    now = ctx.clock()
    for sub in claimed:
        if sub.ven_id not in vens:
            vens[sub.ven_id] = await store.get_ven(sub.ven_id)
        ven = vens[sub.ven_id]
        if ven is None or not ven.registered or not is_aggregator(ven):
            batch.subscription_states.append(
                (sub.ven_id, sub.report_request_id, SubscriptionState.CANCELLED))
            continue
        assert ven.aggregator_id is not None
        key = (ven.aggregator_id, sub.report_specifier_id)
        if key not in cache:
            view = await registry_views.find_view(store, *key)
            ders = None if view is None else await registry_views.offered_members(store, view)
            cache[key] = None if view is None or ders is None else ViewMembers(view, ders)
        vm = cache[key]
        if vm is None:  # the view was deleted (or is invalid): the report ends
            batch.subscription_states.append(
                (sub.ven_id, sub.report_request_id, SubscriptionState.CANCELLED))
            batch.log.append(log("report.unsubscribed", ven, now,
                                 report_request_id=sub.report_request_id, reason="view deleted"))
            continue
        if ven.liveness == Liveness.OFFLINE:
            continue  # nobody polls: don't pile up reports in its outbox
        batch.outbox.append(await off_loop(delivery_of, ctx, ven, sub, vm.ders))
    if batch:
        await store.commit(batch)
    return len(claimed), len(batch.outbox)


async def tick(ctx: Context) -> int:
    """Scheduler job: deliver everything due, in bounded batches; returns how many."""
    total = 0
    while True:
        claimed, queued = await deliver_due(ctx)
        total += queued
        if claimed < ctx.config.views.batch:
            return total


class RefreshGate:
    """Skip the membership check while the event log has not moved."""

    def __init__(self) -> None:
        self.seen = -1

    async def run(self, ctx: Context) -> int:
        seq = await ctx.store.last_seq()
        if seq == self.seen:
            return 0
        sent = await refresh_announcements(ctx)
        self.seen = seq  # only once done: a failed run is retried at the next one
        return sent
