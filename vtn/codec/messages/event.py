"""EiEvent: oadrRequestEvent, oadrDistributeEvent (with its events), oadrCreatedEvent.

An :class:`Event` is one ``oadrEvent`` as a VEN sees it: descriptor, active period,
signals and targets. The VTN builds one per VEN from the stored event record (holding
only that VEN's own targets), so these types carry no tenant or delivery state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .base import EiResponse, ItemBase


@dataclass(slots=True)
class RequestEvent:
    request_id: str
    ven_id: str
    reply_limit: int | None = None


@dataclass(slots=True)
class EventResponse:
    response: EiResponse
    event_id: str
    modification_number: int
    opt_type: str  # "optIn" | "optOut"


@dataclass(slots=True)
class CreatedEvent:
    response: EiResponse
    ven_id: str
    event_responses: list[EventResponse] = field(default_factory=list)


@dataclass(slots=True)
class EventTarget:
    """ei:eiTarget, the subset this VTN uses (XSD order when encoded)."""

    group_ids: list[str] = field(default_factory=list)
    resource_ids: list[str] = field(default_factory=list)
    ven_ids: list[str] = field(default_factory=list)
    party_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SignalInterval:
    """One ei:interval of a signal: a duration after the previous one and a value."""

    duration: timedelta
    value: float
    uid: str = "0"


@dataclass(slots=True)
class EventSignal:
    signal_name: str  # SIMPLE, simple, ELECTRICITY_PRICE, LOAD_DISPATCH, LOAD_CONTROL ...
    signal_type: str  # level, price, delta, setpoint, x-loadControlCapacity ...
    signal_id: str
    intervals: list[SignalInterval]
    item_base: ItemBase | None = None
    current_value: float | None = None
    target: EventTarget | None = None


@dataclass(slots=True)
class Event:
    """One oadrEvent: eiEvent plus oadrResponseRequired."""

    event_id: str
    modification_number: int
    market_context: str
    created_date_time: datetime
    event_status: str  # none | far | near | active | completed | cancelled
    dtstart: datetime
    duration: timedelta
    signals: list[EventSignal]
    target: EventTarget = field(default_factory=EventTarget)
    response_required: str = "always"  # always | never
    priority: int | None = None
    modification_date_time: datetime | None = None
    modification_reason: str | None = None
    test_event: str | None = None  # xs:string; "true" / "false" on the wire
    vtn_comment: str | None = None
    start_after: timedelta | None = None  # xcal:tolerance/tolerate/startafter
    notification: timedelta | None = None
    ramp_up: timedelta | None = None
    recovery: timedelta | None = None


@dataclass(slots=True)
class DistributeEvent:
    """oadrDistributeEvent: every event current for the VEN (none: the empty form)."""

    request_id: str
    vtn_id: str
    response: EiResponse | None = None
    events: list[Event] = field(default_factory=list)
