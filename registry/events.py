"""Demand-response events: the records an operator or aggregator dispatches, as stored.

Rules (OpenADR 2.0b, written once here; the OpenADR side and the HTTP API both obey them):

- An event has an id (string), a ``modification_number`` that starts at 0 and grows by
  one on every change except its status; cancelling is a change too.
- Its signals each carry intervals whose durations add up to the event's duration
  (``duration_s == 0`` means open-ended: a single interval of duration 0).
- Status is a function of time: ``cancelled`` once cancelled; ``completed`` after the
  end; ``active`` from ``dtstart``; ``near`` inside the ramp-up window (or the
  notification window when no ramp-up is given); ``far`` before that.
- ``current_value`` of a signal is 0 unless the event is active, else the value of the
  interval that contains ``now``.
- Targets name VENs, DERs (device ids) and views/groups; the store resolves them to one
  :class:`EventDelivery` per VEN inside the creator's scope, so an aggregator's event can
  never reach another tenant's DERs.
- A VEN's distribute carries every event current for it (not completed, or cancelled
  less than ``CANCELLED_KEPT`` ago), active first, then by priority, then by start.

The shapes follow OpenADR 3.1 too (program ~ market context, interval periods with
payloads, targets), so a 3.1 REST face could serve the same records.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field, model_validator

from registry.models import Model, new_id, utcnow

MAX_INTERVALS = 1000
MAX_SIGNALS = 10
MAX_TARGET_IDS = 100_000
CANCELLED_KEPT = timedelta(hours=1)  # cancelled events stay in distributes this long


class SignalName(StrEnum):
    SIMPLE = "SIMPLE"
    ELECTRICITY_PRICE = "ELECTRICITY_PRICE"
    ENERGY_PRICE = "ENERGY_PRICE"
    DEMAND_CHARGE = "DEMAND_CHARGE"
    BID_PRICE = "BID_PRICE"
    BID_LOAD = "BID_LOAD"
    BID_ENERGY = "BID_ENERGY"
    CHARGE_STATE = "CHARGE_STATE"
    LOAD_DISPATCH = "LOAD_DISPATCH"
    LOAD_CONTROL = "LOAD_CONTROL"


_PRICE = frozenset({"price", "priceRelative", "priceMultiplier"})
# signalType values that fit each signalName (2.0b spec, table of signal names)
SIGNAL_TYPES: dict[SignalName, frozenset[str]] = {
    SignalName.SIMPLE: frozenset({"level"}),
    SignalName.ELECTRICITY_PRICE: _PRICE,
    SignalName.ENERGY_PRICE: _PRICE,
    SignalName.DEMAND_CHARGE: _PRICE,
    SignalName.BID_PRICE: frozenset({"price"}),
    SignalName.BID_LOAD: frozenset({"setpoint"}),
    SignalName.BID_ENERGY: frozenset({"setpoint"}),
    SignalName.CHARGE_STATE: frozenset({"setpoint", "delta", "level"}),
    SignalName.LOAD_DISPATCH: frozenset({"setpoint", "delta"}),
    SignalName.LOAD_CONTROL: frozenset({
        "x-loadControlCapacity", "x-loadControlLevelOffset",
        "x-loadControlPercentOffset", "x-loadControlSetpoint",
    }),
}


class EventStatus(StrEnum):
    NONE = "none"
    FAR = "far"
    NEAR = "near"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({EventStatus.COMPLETED, EventStatus.CANCELLED})


class OptType(StrEnum):
    IN = "optIn"
    OUT = "optOut"


class SignalInterval(Model):
    duration_s: float = Field(ge=0)
    value: float


class EventSignal(Model):
    signal_name: SignalName
    signal_type: str
    signal_id: str = Field(default="", max_length=128)  # "" -> "sig-<index>"
    # item base, when the signal has units: e.g. powerReal/W for LOAD_DISPATCH
    item_kind: str | None = Field(None, max_length=64)
    units: str | None = Field(None, max_length=64)
    intervals: list[SignalInterval] = Field(min_length=1, max_length=MAX_INTERVALS)

    @model_validator(mode="after")
    def _type_fits_name(self) -> EventSignal:
        allowed = SIGNAL_TYPES[self.signal_name]
        if self.signal_type not in allowed:
            raise ValueError(
                f"signal_type {self.signal_type!r} does not fit {self.signal_name.value} "
                f"(allowed: {', '.join(sorted(allowed))})"
            )
        if self.signal_name is SignalName.SIMPLE:
            bad = [iv.value for iv in self.intervals if iv.value not in (0, 1, 2, 3)]
            if bad:
                raise ValueError(f"SIMPLE levels are 0, 1, 2 or 3, got {bad[0]!r}")
        return self

    @property
    def total_s(self) -> float:
        return sum(iv.duration_s for iv in self.intervals)


class EventTargets(Model):
    """What an event is for. Resolved by the store inside the creator's scope."""

    ven_ids: list[str] = Field(default_factory=list, max_length=MAX_TARGET_IDS)
    device_ids: list[str] = Field(default_factory=list, max_length=MAX_TARGET_IDS)
    # saved views (later: DER groups) of the creator's aggregator, by name
    groups: list[str] = Field(default_factory=list, max_length=100)

    def __bool__(self) -> bool:
        return bool(self.ven_ids or self.device_ids or self.groups)


class DrEvent(Model):
    """One demand-response event as stored (both adapters persist this model)."""

    event_id: str = Field(default_factory=new_id, min_length=1, max_length=128)
    modification_number: int = Field(0, ge=0)
    program: str = Field(min_length=1, max_length=256)  # the 2.0b market context
    priority: int | None = Field(None, ge=0, le=2**32 - 1)
    test_event: bool = False
    dtstart: datetime
    duration_s: float = Field(ge=0)  # 0: open-ended
    start_after_s: float | None = Field(None, ge=0)
    notification_s: float | None = Field(None, ge=0)
    ramp_up_s: float | None = Field(None, ge=0)
    recovery_s: float | None = Field(None, ge=0)
    signals: list[EventSignal] = Field(min_length=1, max_length=MAX_SIGNALS)
    targets: EventTargets
    response_required: bool = True
    vtn_comment: str | None = Field(None, max_length=1000)
    modification_reason: str | None = Field(None, max_length=1000)
    # measured response: baseline = mean load of the same DERs over this window before
    # dtstart (registry.response)
    baseline_s: float = Field(3600.0, gt=0, le=7 * 86400)
    # while active, ask targeted VENs for telemetry at this granularity (None: leave as is)
    telemetry_s: float | None = Field(None, ge=1)
    created_by: str = "vtn"
    aggregator_id: str | None = None  # the creating tenant (None: a service)
    created_at: datetime = Field(default_factory=utcnow)
    modified_at: datetime = Field(default_factory=utcnow)
    cancelled_at: datetime | None = None
    # the last status the status job logged (the true status is status_at(now))
    status: EventStatus = EventStatus.FAR

    @model_validator(mode="after")
    def _intervals_fill_the_period(self) -> DrEvent:
        for i, sig in enumerate(self.signals):
            if not sig.signal_id:
                sig.signal_id = f"sig-{i}"
            if abs(sig.total_s - self.duration_s) > 1e-6:
                raise ValueError(
                    f"signals[{i}]: interval durations add up to {sig.total_s:g} s, the "
                    f"event lasts {self.duration_s:g} s"
                )
        ids = [s.signal_id for s in self.signals]
        if len(set(ids)) != len(ids):
            raise ValueError("signal ids must be unique")
        return self

    @property
    def end(self) -> datetime | None:
        if self.duration_s <= 0:
            return None
        return self.dtstart + timedelta(seconds=self.duration_s)

    def status_at(self, now: datetime) -> EventStatus:
        if self.cancelled_at is not None:
            return EventStatus.CANCELLED
        end = self.end
        if end is not None and now >= end:
            return EventStatus.COMPLETED
        if now >= self.dtstart:
            return EventStatus.ACTIVE
        window = self.ramp_up_s if self.ramp_up_s is not None else self.notification_s
        if window and now >= self.dtstart - timedelta(seconds=window):
            return EventStatus.NEAR
        return EventStatus.FAR

    def current_values(self, now: datetime) -> list[float]:
        """Each signal's currentValue at ``now`` (0 unless active)."""
        if self.status_at(now) is not EventStatus.ACTIVE:
            return [0.0] * len(self.signals)
        offset = (now - self.dtstart).total_seconds()
        return [_value_at(sig, offset) for sig in self.signals]

    def is_current(self, now: datetime) -> bool:
        """Still carried in distributes (a VEN that drops it would cancel it)."""
        if self.cancelled_at is not None:
            return now - self.cancelled_at < CANCELLED_KEPT
        end = self.end
        return end is None or now < end + timedelta(seconds=self.recovery_s or 0)

    @property
    def current_until(self) -> datetime | None:
        """The instant ``is_current`` turns false (None: open-ended, current until
        cancelled); stored by the adapters so a VEN's current events are one range."""
        if self.cancelled_at is not None:
            return self.cancelled_at + CANCELLED_KEPT
        end = self.end
        return None if end is None else end + timedelta(seconds=self.recovery_s or 0)

    def sort_key(self, now: datetime) -> tuple[int, int, datetime]:
        """Distribute order: active first, then by priority (0 = none: last), then start."""
        active = 0 if self.status_at(now) is EventStatus.ACTIVE else 1
        prio = self.priority if self.priority else 2**32
        return active, prio, self.dtstart


def _value_at(sig: EventSignal, offset_s: float) -> float:
    t = 0.0
    for iv in sig.intervals:
        t += iv.duration_s
        if offset_s < t or iv.duration_s == 0:
            return iv.value
    return sig.intervals[-1].value


class EventDelivery(Model):
    """One VEN's share of an event: its targeted DERs, what it got, what it answered."""

    event_id: str
    ven_id: str
    aggregator_id: str | None = None  # the VEN's tenant, for scoped reads
    account_id: str | None = None
    device_ids: list[str] = Field(default_factory=list)
    resource_ids: list[str] = Field(default_factory=list)  # same order as device_ids
    delivered_mod: int | None = None  # modification number last sent to the VEN
    delivered_at: datetime | None = None
    opt: OptType | None = None  # the VEN's answer (oadrCreatedEvent or an event opt)
    opt_mod: int | None = None
    opt_at: datetime | None = None
    # per-resource answers (an opt with eiTarget resources), resource_id -> optIn/optOut
    resource_opts: dict[str, OptType] = Field(default_factory=dict)


class OptWindow(Model):
    start: datetime
    duration_s: float = Field(gt=0)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration_s)


class OptSchedule(Model):
    """An oadrCreateOpt: availability windows, or an opt for one event, per resource."""

    opt_id: str = Field(min_length=1, max_length=128)
    ven_id: str
    aggregator_id: str | None = None
    account_id: str | None = None
    opt_type: OptType
    opt_reason: str
    market_context: str | None = None
    event_id: str | None = None
    modification_number: int | None = None
    resource_ids: list[str] = Field(default_factory=list)  # [] = every DER of the VEN
    device_ids: list[str] = Field(default_factory=list)
    windows: list[OptWindow] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    cancelled_at: datetime | None = None

    def covers(self, at: datetime) -> bool:
        if self.cancelled_at is not None:
            return False
        return any(w.start <= at < w.end for w in self.windows)
