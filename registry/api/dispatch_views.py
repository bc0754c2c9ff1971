"""Shapes of /api/v1/dispatches (group dispatch): the body a caller sends, the query
models, and what comes back. Not a resource module; registry.api.group_dispatch uses it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from registry.group_dispatch import (
    DISPATCH_ID,
    MAX_SLOTS,
    DispatchMember,
    DispatchMode,
    DispatchSlot,
    DispatchStatus,
    GroupDispatch,
    MemberState,
)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class DispatchIn(BaseModel):
    """A request: the group delivers ``slots`` of kW back to back from ``dtstart``
    (mode power), or disconnects / connects for that long."""

    model_config = ConfigDict(extra="forbid")

    dispatch_id: str | None = Field(None, pattern=DISPATCH_ID,
                                    description="default: a new UUIDv7; a duplicate is 409")
    group: str = Field(min_length=1, max_length=256, description="an aggregator names its "
                       "own groups; a service <aggregator_id>/<group>")
    mode: DispatchMode = DispatchMode.POWER
    program: str = Field("group-dispatch", min_length=1, max_length=256,
                         description="the events' marketContext")
    priority: int | None = Field(None, ge=0, le=2**32 - 1)
    dtstart: AwareDatetime = Field(description="ISO 8601 with a time zone")
    slots: list[DispatchSlot] = Field(min_length=1, max_length=MAX_SLOTS,
                                      description="the requested curve: {duration_s, kw}")
    ramp_s: float = Field(0.0, ge=0, le=3600, description="spread each change over this "
                          "long (interval shaping) and recover over it after the end")
    baseline_s: float = Field(3600.0, gt=0, le=7 * 86400,
                              description="measured-response baseline window")

    @field_validator("dtstart")
    @classmethod
    def _bounded(cls, value: datetime) -> datetime:
        if not EARLIEST <= value < LATEST:
            raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year}")
        return value.astimezone(UTC)

    def to_dispatch(self) -> GroupDispatch:
        data = self.model_dump(exclude_none=True)
        return GroupDispatch.model_validate(data)


class DispatchListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group: str | None = Field(None, max_length=256)
    aggregator_id: str | None = Field(None, max_length=256, description="service only")
    open: bool | None = Field(None, description="only dispatches not closed yet")
    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = Field(None, pattern=DISPATCH_ID)


class DispatchDetailQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: int = Field(1000, ge=0, le=100_000, description="members listed at most")


class DispatchOut(GroupDispatch):
    status_now: DispatchStatus


class DispatchCreated(DispatchOut):
    summary: dict[str, int] = Field(description="members, assigned, vens (events queued)")


class DispatchPage(BaseModel):
    items: list[DispatchOut]
    next_cursor: str | None = None


class SlotStatus(BaseModel):
    start: datetime
    end: datetime
    requested_kw: float
    assigned_kw: float
    opted_in_kw: float
    measured_kw: float | None
    shortfall_kw: float


class MemberStatus(BaseModel):
    device_id: str
    ven_id: str
    state: str
    reason: str | None
    capacity_kw: float
    event_id: str | None
    response: str = Field(description="optIn, optOut, pending, no response, none")
    assigned_kw: list[float]


class DispatchStatusOut(BaseModel):
    dispatch_id: str
    group: str
    mode: DispatchMode
    status: DispatchStatus
    rev: int
    redispatches: int
    slots: list[SlotStatus]
    totals: dict[str, Any]
    members: list[MemberStatus]
    members_truncated: bool


def dispatch_out(d: GroupDispatch, now: datetime) -> dict[str, Any]:
    doc = d.model_dump(mode="json")
    doc["status_now"] = d.status_at(now).value
    return doc


def dispatch_created(d: GroupDispatch, members: list[DispatchMember], now: datetime
                     ) -> dict[str, Any]:
    """The answer to a create (API 201 body, ``vtn dispatches create --json``)."""
    doc = dispatch_out(d, now)
    assigned = [m for m in members if m.state is MemberState.ASSIGNED]
    doc["summary"] = {"members": len(members), "assigned": len(assigned),
                      "vens": len({m.ven_id for m in assigned})}
    return doc
