"""EiOpt: opt schedules and opt-outs of events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .base import EiResponse

# --- EiOpt ----------------------------------------------------------------------


@dataclass(slots=True)
class CreateOpt:
    opt_id: str
    opt_type: str
    opt_reason: str
    request_id: str
    ven_id: str
    created_date_time: datetime
    event_id: str | None = None
    modification_number: int | None = None
    market_context: str | None = None
    resource_ids: list[str] = field(default_factory=list)
    # xcal:vavailability components as (dtstart, duration) pairs
    availability: list[tuple[datetime, timedelta]] = field(default_factory=list)


@dataclass(slots=True)
class CreatedOpt:
    response: EiResponse
    opt_id: str


@dataclass(slots=True)
class CancelOpt:
    request_id: str
    opt_id: str
    ven_id: str


@dataclass(slots=True)
class CanceledOpt:
    response: EiResponse
    opt_id: str
