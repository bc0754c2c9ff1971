"""Shapes of /api/v1/events and /api/v1/opts: what a caller sends (bounded so that no
input can overflow a date or a number later), the query models, and what comes back.

Not a resource module (it has no operations); :mod:`registry.api.events` uses it. The
fields of an event are :class:`registry.events.DrEvent`'s; the bounds below are the HTTP
layer's on top (a date in year 1 or a duration of 1e300 s is refused here with the field
named, instead of failing deep inside a status computation).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from registry.events import (
    DrEvent,
    EventDelivery,
    EventSignal,
    EventStatus,
    EventTargets,
    OptSchedule,
    OptType,
)
from registry.limits import bounded_list

EVENT_ID_PATTERN = r"^[A-Za-z0-9._~:-]{1,128}$"
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
MAX_DURATION_S = 10 * 366 * 86400.0  # ten years
MAX_WINDOW_S = 366 * 86400.0  # notification, ramp-up, recovery, start-after
# set by the server; a body that sends one is refused naming it
SERVER_OWNED = ("modification_number", "created_by", "aggregator_id", "created_at",
                "modified_at", "cancelled_at", "status", "status_now")

Response = Literal["optIn", "optOut", "no response", "not required", "pending"]
# the item kinds an oadrDistributeEvent can carry (vtn/services/distribute.py)
ItemKind = Literal["powerReal", "energyReal", "currency", "currencyPerKWh", "currencyPerKW"]


class EventSignalIn(EventSignal):
    """A signal as sent: ``units`` (W, kW, MW, Wh, kWh, MWh, or a currency) makes it
    carry an item of ``item_kind`` (default powerReal)."""

    item_kind: ItemKind | None = None


def _dtstart(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year}")
    return value.astimezone(UTC)


def _query_time(value: datetime | None) -> datetime | None:
    """A time in a query: any sane one (converting year 1 at +14:00 to UTC would fail)."""
    if value is None:
        return None
    if not datetime(1900, 1, 1, tzinfo=UTC) <= value < datetime(9000, 1, 1, tzinfo=UTC):
        raise ValueError("must lie between 1900 and 9000")
    return value.astimezone(UTC)


def _check_signals(signals: list[EventSignal], duration_s: float | None) -> list[EventSignal]:
    """Every signal's intervals add up to the event's duration (default: the first's)."""
    total = signals[0].total_s if duration_s is None else duration_s
    if total > MAX_DURATION_S:
        raise ValueError(f"the intervals last {total:g} s, more than {MAX_DURATION_S:g} s")
    for i, sig in enumerate(signals):
        if abs(sig.total_s - total) > 1e-6:
            raise ValueError(f"signals[{i}]: interval durations add up to {sig.total_s:g} s, "
                             f"the event lasts {total:g} s")
    ids = [s.signal_id or f"sig-{i}" for i, s in enumerate(signals)]
    if len(set(ids)) != len(ids):
        raise ValueError("signal ids must be unique")
    return signals


class _Fields(BaseModel):
    """The user-owned fields of an event, with the HTTP layer's bounds."""

    model_config = ConfigDict(extra="forbid")

    program: str = Field(min_length=1, max_length=256,
                         description="the program (2.0b market context)")
    dtstart: AwareDatetime = Field(description="start, ISO 8601 with a time zone")
    duration_s: float | None = Field(
        None, ge=0, le=MAX_DURATION_S,
        description="0: open-ended; default: the sum of the first signal's intervals")
    signals: list[EventSignalIn] = Field(min_length=1, max_length=10)
    targets: EventTargets = Field(description="ven_ids, device_ids, groups (view names)")
    priority: int | None = Field(None, ge=0, le=2**32 - 1, description="0 or none: lowest")
    test_event: bool = False
    response_required: bool = True
    vtn_comment: str | None = Field(None, max_length=1000)
    start_after_s: float | None = Field(None, ge=0, le=MAX_WINDOW_S,
                                        description="randomisation window after dtstart")
    notification_s: float | None = Field(None, ge=0, le=MAX_WINDOW_S)
    ramp_up_s: float | None = Field(None, ge=0, le=MAX_WINDOW_S)
    recovery_s: float | None = Field(None, ge=0, le=MAX_WINDOW_S)
    baseline_s: float = Field(3600.0, gt=0, le=7 * 86400,
                              description="measured-response baseline window before dtstart")
    telemetry_s: float | None = Field(None, ge=1, le=86400,
                                      description="telemetry granularity while active")

    @field_validator("dtstart")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        return _dtstart(value)


class EventIn(_Fields):
    """A DR event to dispatch. Server-owned fields (modification_number, created_by,
    aggregator_id, created_at, modified_at, cancelled_at, status) are refused."""

    event_id: str | None = Field(None, pattern=EVENT_ID_PATTERN,
                                 description="default: a new UUIDv7")

    @field_validator("signals")
    @classmethod
    def _signals(cls, value: list[EventSignal], info: Any) -> list[EventSignal]:
        return _check_signals(value, info.data.get("duration_s"))

    def to_event(self) -> DrEvent:
        data = self.model_dump(exclude_none=True)
        if self.duration_s is None:
            data["duration_s"] = self.signals[0].total_s
        return DrEvent.model_validate(data)


class EventPatch(BaseModel):
    """Fields to change (any of the create fields but event_id, and modification_reason).
    Signals without duration_s set the duration to the first signal's intervals."""

    model_config = ConfigDict(extra="forbid")

    program: str | None = Field(None, min_length=1, max_length=256)
    dtstart: AwareDatetime | None = None
    duration_s: float | None = Field(None, ge=0, le=MAX_DURATION_S)
    signals: list[EventSignalIn] | None = Field(None, min_length=1, max_length=10)
    targets: EventTargets | None = None
    priority: int | None = Field(None, ge=0, le=2**32 - 1)
    test_event: bool | None = None
    response_required: bool | None = None
    vtn_comment: str | None = Field(None, max_length=1000)
    modification_reason: str | None = Field(None, max_length=1000)
    start_after_s: float | None = Field(None, ge=0, le=MAX_WINDOW_S)
    notification_s: float | None = Field(None, ge=0, le=MAX_WINDOW_S)
    ramp_up_s: float | None = Field(None, ge=0, le=MAX_WINDOW_S)
    recovery_s: float | None = Field(None, ge=0, le=MAX_WINDOW_S)
    baseline_s: float | None = Field(None, gt=0, le=7 * 86400)
    telemetry_s: float | None = Field(None, ge=1, le=86400)

    @field_validator("dtstart")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        return _dtstart(value)

    @field_validator("signals")
    @classmethod
    def _signals(cls, value: list[EventSignal] | None, info: Any) -> list[EventSignal] | None:
        return None if value is None else _check_signals(value, info.data.get("duration_s"))

    def changes(self) -> dict[str, Any]:
        """The fields sent, as DrEvent data (``null`` clears an optional field)."""
        out = {k: getattr(self, k) for k in self.model_fields_set}
        for key in ("signals", "targets"):
            if out.get(key) is not None:
                out[key] = [s.model_dump() for s in out[key]] if key == "signals" \
                    else out[key].model_dump()
        if out.get("signals") and "duration_s" not in out:
            out["duration_s"] = self.signals[0].total_s  # type: ignore[index]
        return out


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [p for v in value for p in _split(v)]
    return value


class EventListQuery(BaseModel):
    """Filters over the events in scope, in event_id order (keyset paging)."""

    model_config = ConfigDict(extra="forbid")

    status: list[EventStatus] | None = Field(None, description="status now, any of these")
    ven_id: str | None = Field(None, max_length=256, description="with a delivery to this VEN")
    device_id: str | None = Field(None, max_length=256, description="targeting this DER")
    from_: AwareDatetime | None = Field(None, alias="from", description="dtstart >= this")
    to: AwareDatetime | None = Field(None, description="dtstart < this")
    aggregator_id: str | None = Field(None, max_length=256,
                                      description="created by this tenant (service only)")
    program: str | None = Field(None, max_length=256)
    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = Field(None, pattern=EVENT_ID_PATTERN,
                               description="next_cursor of the previous page")

    @field_validator("status", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return bounded_list(_split(value))

    @field_validator("from_", "to")
    @classmethod
    def _sane(cls, value: datetime | None) -> datetime | None:
        return _query_time(value)


class EventDetailQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deliveries: int = Field(1000, ge=0, le=100_000,
                            description="at most this many deliveries (totals count all)")


class OptsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ven_id: str | None = Field(None, max_length=256,
                               description="this VEN's schedules (required without at)")
    at: AwareDatetime | None = Field(None, description="schedules with a window containing it")
    opt_type: OptType | None = None

    @field_validator("at")
    @classmethod
    def _sane(cls, value: datetime | None) -> datetime | None:
        return _query_time(value)


# --- responses ---------------------------------------------------------------------------


class EventOut(DrEvent):
    status_now: EventStatus = Field(description="status at the time of the answer")


class Summary(BaseModel):
    vens: int = Field(description="VENs owed the event")
    ders: int = Field(description="targeted DERs")


class EventCreated(EventOut):
    summary: Summary


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(None, description="pass as cursor= for the next page")


class DeliveryOut(BaseModel):
    ven_id: str
    ders: list[str] = Field(description="the VEN's targeted DERs (device ids)")
    delivered_mod: int | None = None
    delivered_at: datetime | None = None
    opt: OptType | None = None
    opt_mod: int | None = None
    opt_at: datetime | None = None
    response: Response = Field(description="the VEN's answer to the current modification")
    resource_opts: dict[str, OptType] = Field(default_factory=dict)


class Totals(BaseModel):
    vens: int
    ders: int
    opted_in: int
    opted_out: int
    no_response: int
    not_required: int
    pending: int


class CurrentValue(BaseModel):
    signal_id: str
    signal_name: str
    value: float


class EventDetail(EventOut):
    values_now: list[CurrentValue] = Field(description="each signal's current value")
    deliveries: list[DeliveryOut]
    deliveries_truncated: bool = False
    totals: Totals


class OptList(BaseModel):
    items: list[OptSchedule]


# --- building them -----------------------------------------------------------------------

# the stored status lags the true one (the status job logs transitions); statuses only
# move forward, so "X now" is among the events stored as X or as an earlier status
PROGRESSION = [EventStatus.NONE, EventStatus.FAR, EventStatus.NEAR, EventStatus.ACTIVE,
               EventStatus.COMPLETED]


def stored_statuses(wanted: list[EventStatus] | None) -> list[EventStatus] | None:
    """The stored statuses to ask the store for, to find the events with ``wanted`` now."""
    if not wanted:
        return None
    out: set[EventStatus] = set()
    for status in wanted:
        if status in PROGRESSION:
            out.update(PROGRESSION[: PROGRESSION.index(status) + 1])
        else:
            out.add(status)
    return sorted(out)



def event_out(event: DrEvent, now: datetime) -> dict[str, Any]:
    doc = event.model_dump(mode="json")
    doc["status_now"] = event.status_at(now).value
    return doc


def response_of(event: DrEvent, d: EventDelivery) -> str:
    """optIn/optOut at the current modification; else pending until the VEN has it; then
    no response (or not required when the event asks for none)."""
    mod = event.modification_number
    if d.opt is not None and d.opt_mod == mod:
        return d.opt.value
    if d.delivered_mod is None or d.delivered_mod < mod:
        return "pending"
    return "no response" if event.response_required else "not required"


RESPONSE_TOTAL = {"optIn": "opted_in", "optOut": "opted_out", "no response": "no_response",
                  "not required": "not_required", "pending": "pending"}


def event_detail(event: DrEvent, deliveries: list[EventDelivery], now: datetime,
                 shown: int) -> dict[str, Any]:
    doc = event_out(event, now)
    doc["values_now"] = [
        {"signal_id": s.signal_id, "signal_name": s.signal_name.value, "value": v}
        for s, v in zip(event.signals, event.current_values(now), strict=True)
    ]
    totals = dict.fromkeys(("opted_in", "opted_out", "no_response", "not_required",
                            "pending"), 0)
    items = []
    for d in sorted(deliveries, key=lambda d: d.ven_id):
        response = response_of(event, d)
        totals[RESPONSE_TOTAL[response]] += 1
        if len(items) < shown:
            items.append({
                "ven_id": d.ven_id, "ders": d.device_ids, "delivered_mod": d.delivered_mod,
                "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
                "opt": d.opt.value if d.opt else None, "opt_mod": d.opt_mod,
                "opt_at": d.opt_at.isoformat() if d.opt_at else None, "response": response,
                "resource_opts": {r: o.value for r, o in d.resource_opts.items()},
            })
    doc["deliveries"] = items
    doc["deliveries_truncated"] = len(items) < len(deliveries)
    doc["totals"] = {"vens": len(deliveries),
                     "ders": sum(len(d.device_ids) for d in deliveries), **totals}
    return doc
