"""Registry domain models, declared once.

These pydantic models are what both store adapters persist, what the service layer
computes with and what the HTTP side API returns. Times are aware UTC datetimes;
IDs are strings exactly as the VEN sent them.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """A UUIDv7 (RFC 9562): millisecond time first, then 74 random bits. Time-ordered ids
    land at the right edge of the b-trees that index them (VENs, log, outbox), so a
    burst of registrations dirties a few pages instead of one random page per row."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (1 << 48) - 1) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & (1 << 62) - 1
    return str(uuid.UUID(int=value))


class Liveness(StrEnum):
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"


class DeviceClass(StrEnum):
    """FLEXCoop device classes, extended for generation, storage and EV charging."""

    HVAC = "hvacDevice"
    DHW = "dhwDevice"
    LIGHTING = "lightingLoad"
    PV = "pvSystem"
    STORAGE = "storageDevice"
    EV = "evCharger"
    OTHER = "otherLoad"


class DeviceType(StrEnum):
    DEMAND = "Demand"
    GENERATION = "Generation"
    STORAGE = "Storage"


class VenRole(StrEnum):
    OSB = "osb"  # a gateway that owns DERs
    AGGREGATOR = "aggregator"  # aggregator software that discovers DERs


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class Location(Model):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class LoadControl(Model):
    current: float
    min: float | None = None
    max: float | None = None
    normal: float | None = None


class DerStatus(Model):
    """Last reported oadrPayloadResourceStatus."""

    online: bool | None = None
    manual_override: bool | None = None
    load_control: dict[str, LoadControl] = Field(default_factory=dict)
    at: datetime | None = None


class Telemetry(Model):
    """One rID the VEN offered for this DER in its METADATA reports."""

    r_id: str
    report_specifier_id: str
    report_name: str
    report_type: str
    reading_type: str
    item_kind: str | None = None
    item_description: str | None = None
    units: str | None = None
    si_scale: str | None = None
    min_period_s: float | None = None
    max_period_s: float | None = None
    on_change: bool = False
    market_context: str | None = None


class LastValue(Model):
    value: float
    at: datetime
    report_type: str | None = None
    units: str | None = None


class Der(Model):
    device_id: str = Field(default_factory=new_id)
    ven_id: str
    resource_id: str
    device_name: str
    account_id: str | None = None
    aggregator_id: str | None = None
    device_class: DeviceClass = DeviceClass.OTHER
    device_type: DeviceType = DeviceType.DEMAND
    end_device_mrids: list[str] = Field(default_factory=list)
    availability: bool = True
    dr_availability: bool = True
    marketplace_availability: bool = False
    location: Location | None = None
    max_capacity: float | None = None  # W, SI-normalised
    available_capacity: float | None = None  # W
    status: DerStatus = Field(default_factory=DerStatus)
    telemetry: list[Telemetry] = Field(default_factory=list)
    last_values: dict[str, LastValue] = Field(default_factory=dict)
    liveness: Liveness = Liveness.OFFLINE
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_report_at: datetime | None = None
    version: int = 1


class Ven(Model):
    ven_id: str = Field(default_factory=new_id)
    ven_name: str
    role: VenRole = VenRole.OSB
    account_id: str | None = None
    aggregator_id: str | None = None
    fingerprint: str | None = None
    registration_id: str | None = None
    registered: bool = False
    profile_name: str | None = None
    transport_name: str | None = None
    transport_address: str | None = None
    http_pull_model: bool | None = None
    xml_signature: bool = False
    report_only: bool = False
    poll_freq_s: float = 10.0
    cancel_pending: bool = False
    liveness: Liveness = Liveness.OFFLINE
    last_seen: datetime | None = None
    offline_since: datetime | None = None
    registered_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class RidInfo(Model):
    """What the update path needs to know about one registered rID."""

    resource_id: str | None = None
    report_type: str | None = None
    units: str | None = None
    si_scale: str | None = None


class ReportSpec(Model):
    """A METADATA report a VEN registered (one per reportSpecifierID)."""

    ven_id: str
    report_specifier_id: str
    report_name: str
    # rID -> resourceID it belongs to ("" for VEN-level telemetry)
    r_ids: dict[str, str]
    r_info: dict[str, RidInfo] = Field(default_factory=dict)
    registered_at: datetime = Field(default_factory=utcnow)


class ReportRequestState(StrEnum):
    PENDING = "pending"  # sent, not yet acknowledged with oadrCreatedReport (or a report)
    ACTIVE = "active"
    CANCEL_PENDING = "cancel_pending"  # oadrCancelReport queued (or to be queued)
    CANCELLED = "cancelled"
    OVERDUE = "overdue"  # not acknowledged after every retry (vtn.services.report_watch)
    SILENT = "silent"  # acknowledged, but its reports stopped arriving


# states in which the VEN may (still) send reports for a request
OPEN_REPORT_STATES = frozenset({
    ReportRequestState.PENDING, ReportRequestState.ACTIVE, ReportRequestState.OVERDUE,
    ReportRequestState.SILENT,
})
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width: text order is time order


def fixed_time(at: datetime) -> str:
    """``at`` as the fixed-width UTC text the stores index (next_check_at)."""
    return at.astimezone(UTC).strftime(TIME_FORMAT)


class ReportRequestRecord(Model):
    """A report the VTN asked a VEN for, and how that request is doing.

    ``rev`` grows on every write, so the watch job's changes are conditional on what
    it read (one process acts on each due request). ``next_check_at`` is when that job
    looks at it again (None: never; indexed, stored as fixed-width text).
    """

    ven_id: str
    report_request_id: str
    report_specifier_id: str
    r_ids: list[str]
    granularity_s: float
    report_back_duration_s: float
    state: ReportRequestState = ReportRequestState.PENDING
    created_at: datetime = Field(default_factory=utcnow)
    # reportInterval sent with the request (None: none, as before issue #21)
    interval_start: datetime | None = None
    interval_duration_s: float | None = None
    renew: bool = False  # replaced by a fresh request before its interval ends
    origin: str = "registration"  # "registration", "operator", "event:<event_id>"
    requested_at: datetime | None = None  # last time it was sent
    attempts: int = 0  # times sent (0: written by the API, not sent yet)
    acknowledged_at: datetime | None = None
    last_report_at: datetime | None = None  # receive time, refreshed at most every period
    next_check_at: datetime | None = None
    replaces: str | None = None  # the request this one renews
    replaced_by: str | None = None
    cancel_sent: bool = False  # CANCEL_PENDING: the oadrCancelReport is in the outbox
    reading_types: dict[str, str] = Field(default_factory=dict)  # rID -> readingType
    rev: int = 0

    @field_serializer("next_check_at")
    def _fixed(self, value: datetime | None) -> str | None:
        return fixed_time(value) if value is not None else None

    @property
    def period_s(self) -> float:
        """Seconds between the VEN's oadrUpdateReports."""
        return max(self.granularity_s, self.report_back_duration_s, 1.0)

    @property
    def interval_end(self) -> datetime | None:
        if self.interval_start is None or not self.interval_duration_s:
            return None
        return self.interval_start + timedelta(seconds=self.interval_duration_s)


class OutboxMessage(Model):
    """An encoded message waiting for the VEN's next oadrPoll."""

    ven_id: str
    kind: str  # element name, e.g. oadrRegisterReport
    body: str  # the encoded XML
    created_at: datetime = Field(default_factory=utcnow)
    seq: int | None = None  # assigned by the store, FIFO per VEN


class LogEntry(Model):
    """One line of the append-only event log."""

    kind: str
    at: datetime = Field(default_factory=utcnow)
    actor: str = "vtn"
    ven_id: str | None = None
    device_id: str | None = None
    aggregator_id: str | None = None
    account_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    seq: int | None = None  # assigned by the store: strictly increasing, gap-free


class LivenessChange(Model):
    ven_id: str
    old: Liveness
    new: Liveness
    ders: int = 0


# --- discovery over OpenADR (aggregator VENs) ------------------------------------------

VIEW_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
DEFAULT_VIEW = "all"  # every aggregator's implicit view: all of its DERs


class View(Model):
    """What the deprecated /api/v1/views answers: an aggregator's DER group defined by a
    filter (registry.group_model.Group is what is stored; registry.views converts).

    ``filters`` holds the filter fields of a discovery query (no sort, paging or
    projection), validated by ``registry.groups.normalise_filters``.
    """

    aggregator_id: str = Field(min_length=1)
    name: str = Field(pattern=VIEW_NAME_PATTERN)
    filters: dict[str, Any] = Field(default_factory=dict)
    description: str | None = Field(None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SubscriptionState(StrEnum):
    ACTIVE = "active"
    DONE = "done"  # a one-shot report was delivered, or the report interval ended
    CANCELLED = "cancelled"


class ReportSubscription(Model):
    """A report a VEN asked the VTN for (oadrCreateReport): a persisted delivery schedule.

    The scheduler claims it when ``next_due_at`` has passed (a conditional update, so
    only one VTN process delivers each report) and queues an oadrUpdateReport.
    """

    ven_id: str
    report_request_id: str
    report_specifier_id: str  # the view name
    r_ids: list[str]
    granularity_s: float
    report_back_duration_s: float  # 0: one-shot
    next_due_at: datetime | None = None
    until: datetime | None = None
    state: SubscriptionState = SubscriptionState.ACTIVE
    deliveries: int = 0
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def period_s(self) -> float:
        """Seconds between deliveries (0 for a one-shot report)."""
        if self.report_back_duration_s <= 0:
            return 0.0
        return max(self.report_back_duration_s, self.granularity_s)

    def claimed(self, now: datetime) -> ReportSubscription:
        """This subscription after one delivery claimed at ``now`` (no catch-up bursts)."""
        period = self.period_s
        update: dict[str, Any] = {"deliveries": self.deliveries + 1}
        due = self.next_due_at or now
        nxt = due + timedelta(seconds=period) if period > 0 else None
        if nxt is not None and nxt <= now:
            nxt = now + timedelta(seconds=period)  # missed slots are skipped, not replayed
        if nxt is None or (self.until is not None and nxt > self.until):
            update.update(state=SubscriptionState.DONE, next_due_at=None)
        else:
            update["next_due_at"] = nxt
        return self.model_copy(update=update)
