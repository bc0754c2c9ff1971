"""The unit of work: a whole reaction to a message, applied atomically by Store.commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from registry.events import DrEvent, EventDelivery, EventStatus, OptSchedule
from registry.group_model import Group, MemberKind
from registry.models import (
    Der,
    DerStatus,
    LastValue,
    LogEntry,
    OutboxMessage,
    ReportRequestRecord,
    ReportRequestState,
    ReportSpec,
    ReportSubscription,
    SubscriptionState,
    Ven,
)
from registry.port.events import OptAnswer

ANY = "*"  # Batch.announce: no expectation about the previous hash
# Batch.distribute_to: the outbox marker's kind (empty body; at most one pending per VEN)
DISTRIBUTE_MARKER = "oadrDistributeEvent"


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
class TelemetryBucket:
    """Load samples of one DER rID in one time bucket (W): merged by adding."""

    device_id: str
    r_id: str
    bucket: datetime  # start of the bucket
    sum_w: float
    count: int


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
    # (new record, expected state, expected rev): replace a report request only if it is
    # still as read (else the whole commit fails with Conflict); the record carries rev+1
    report_request_updates: list[tuple[ReportRequestRecord, ReportRequestState, int]] = field(
        default_factory=list)
    # (ven_id, report_request_id, at, data, next_check_at): the VEN acknowledged (data
    # False) or sent a report (data True: last_report_at = at); pending/overdue/silent
    # become active, acknowledged_at is set once, next_check_at is set (the watch job
    # then wakes only when the reports stop, or to renew), rev grows
    report_request_seen: list[tuple[str, str, datetime, bool, datetime | None]] = field(
        default_factory=list)
    # telemetry history (registry.response): additive (sum, count) per bucket
    telemetry: list[TelemetryBucket] = field(default_factory=list)
    # drop history buckets that start before this time
    prune_telemetry_before: datetime | None = None
    outbox: list[OutboxMessage] = field(default_factory=list)
    clear_outbox_of: list[str] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)
    # (ven_id, at): Store.mark_online inside this unit, after the log entries above (a
    # registration is one transaction instead of two)
    mark_online: list[tuple[str, datetime]] = field(default_factory=list)
    # DER groups (registry.groups): (record, expected stored version or None = must not
    # exist yet); a stale expectation or a taken (owner, name) fails the commit (Conflict)
    groups: list[tuple[Group, int | None]] = field(default_factory=list)
    # (group_id, expected version or None = any): the record and its static members go
    delete_groups: list[tuple[str, int | None]] = field(default_factory=list)
    # (group_id, device_id, include / exclude, or None = neither any more)
    group_members: list[tuple[str, str, MemberKind | None]] = field(default_factory=list)
    # discovery over OpenADR: reports VENs asked the VTN for, announcements
    subscriptions: list[ReportSubscription] = field(default_factory=list)
    subscription_states: list[tuple[str, str, SubscriptionState]] = field(default_factory=list)
    cancel_subscriptions_of: list[str] = field(default_factory=list)  # ven_ids
    # (ven_id, expected hash or ANY, new hash): the metadata last announced to a VEN;
    # a stale expectation makes the whole commit fail with Conflict (two processes
    # noticing the same change announce it once)
    announce: list[tuple[str, str | None, str]] = field(default_factory=list)

    # demand response (registry.events, registry.port.events)
    events: list[DrEvent] = field(default_factory=list)  # upsert on event_id
    # (event_id, expected modification_number, or None = must not exist yet); a stale
    # expectation makes the whole commit fail with Conflict
    event_expect: list[tuple[str, int | None]] = field(default_factory=list)
    # conditional status changes (event_id, expected old, new): stale -> Conflict, so a
    # transition is logged by exactly one process
    event_status: list[tuple[str, EventStatus, EventStatus]] = field(default_factory=list)
    deliveries: list[EventDelivery] = field(default_factory=list)  # upsert (event, VEN)
    delete_deliveries: list[tuple[str, str]] = field(default_factory=list)  # (event, VEN)
    # (event_id, ven_id, modification_number, at): what a distribute carried
    delivered: list[tuple[str, str, int, datetime]] = field(default_factory=list)
    opt_answers: list[OptAnswer] = field(default_factory=list)
    # VENs owed an oadrDistributeEvent: at most one pending marker per VEN in the outbox
    # (kind oadrDistributeEvent, empty body); the poll builds it from the VEN's current
    # events when it is claimed, so it always carries every event current for the VEN
    distribute_to: list[str] = field(default_factory=list)
    opts: list[OptSchedule] = field(default_factory=list)  # upsert on (ven_id, opt_id)

    def __bool__(self) -> bool:
        return any(
            getattr(self, name)
            for name in self.__slots__  # type: ignore[attr-defined]
        )
