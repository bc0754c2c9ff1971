"""Group dispatch (issue #15): "group G delivers X kW (or a curve) from T1 to T2", as stored,
and the pure rules that split it over the group's members and re-split it when some drop.

Rules (docs/der-group-dispatch.md):

- A dispatch asks for ``slots`` of kW, back to back from ``dtstart`` (the requested
  curve). Each member DER gets, per slot, ``capacity_i * min(1, requested / capacity)``:
  a share in proportion to its available capacity (``available_capacity``, else
  ``max_capacity``), never more than that capacity. What the group cannot cover is the
  shortfall, shown in the status.
- Eligible members: online or stale, ``dr_availability`` true, a capacity > 0, and no
  optOut schedule of their VEN covering the dispatch. The others are stored too, with
  the reason, so the status explains who was left out.
- A member drops out when its VEN opts out of its event (or opts that resource out), or
  goes offline, or leaves the group. :func:`rebalance` then recomputes the slots that
  have not ended yet over the members still in: the same rule, so the shortfall goes to
  the others in proportion to their capacity, up to their capacity.
- OpenADR 2.0b has no per-resource kW in one event, so each member VEN gets its own event
  (``<dispatch_id>.<n>``): ``LOAD_DISPATCH`` ``delta`` in kW (negative: reduce the net
  load) per slot, the sum of its members' shares, targeted at those members' resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field, model_validator

from registry.models import Model, new_id, utcnow

MAX_SLOTS = 288  # a day of 5-minute slots
DISPATCH_ID = r"^[A-Za-z0-9_~:-]{1,64}$"  # no '.': event ids are <dispatch_id>.<n>
KW_DECIMALS = 3  # assignments are rounded to the watt
RAMP_STEPS = 4  # a ramped change is sent as this many equal steps (interval shaping)
MAX_RAMPED_SLOTS = 1000 // (RAMP_STEPS + 1) - 1  # fits 2.0b's 1000 intervals (MAX_INTERVALS)


class DispatchMode(StrEnum):
    POWER = "power"  # deliver the kW curve (LOAD_DISPATCH delta)
    DISCONNECT = "disconnect"  # LOAD_CONTROL x-loadControlCapacity 0 (+ SIMPLE 3)
    CONNECT = "connect"  # end disconnects; capacity ramped 0 -> 1 over ramp_s


class DispatchStatus(StrEnum):
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class MemberState(StrEnum):
    ASSIGNED = "assigned"
    OPTED_OUT = "opted_out"  # its VEN opted out of the event, or an optOut schedule
    OFFLINE = "offline"
    LEFT = "left"  # no longer a member of the group
    UNAVAILABLE = "unavailable"  # not eligible when dispatched (see reason)


class DispatchSlot(Model):
    duration_s: float = Field(gt=0, le=86400)
    kw: float = Field(0.0, ge=0, le=1e7)


class GroupDispatch(Model):
    """One dispatch of a group, as stored (both adapters persist this model)."""

    dispatch_id: str = Field(default_factory=new_id, pattern=DISPATCH_ID)
    group: str = Field(min_length=1, max_length=256)  # as sent; stored: the group's id
    group_name: str | None = Field(None, max_length=256)  # set by the server
    aggregator_id: str | None = None  # the group's owner (a service's dispatch: its owner)
    mode: DispatchMode = DispatchMode.POWER
    program: str = Field("group-dispatch", min_length=1, max_length=256)
    priority: int | None = Field(None, ge=0, le=2**32 - 1)
    dtstart: datetime
    slots: list[DispatchSlot] = Field(min_length=1, max_length=MAX_SLOTS)
    ramp_s: float = Field(0.0, ge=0, le=3600)
    baseline_s: float = Field(3600.0, gt=0, le=7 * 86400)
    rev: int = 0  # grows on every write; writes are conditional on it
    redispatches: int = 0
    created_by: str = "vtn"
    created_at: datetime = Field(default_factory=utcnow)
    modified_at: datetime = Field(default_factory=utcnow)
    cancelled_at: datetime | None = None
    closed: bool = False  # completed or cancelled, and its last re-dispatch done

    @model_validator(mode="after")
    def _ramp_fits(self) -> GroupDispatch:
        if self.ramp_s and len(self.slots) > MAX_RAMPED_SLOTS:
            raise ValueError(f"with ramp_s at most {MAX_RAMPED_SLOTS} slots (each change "
                             f"becomes {RAMP_STEPS} intervals)")
        return self

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.slots)

    @property
    def end(self) -> datetime:
        return self.dtstart + timedelta(seconds=self.duration_s)

    def slot_bounds(self) -> list[tuple[datetime, datetime]]:
        out, t = [], self.dtstart
        for s in self.slots:
            nxt = t + timedelta(seconds=s.duration_s)
            out.append((t, nxt))
            t = nxt
        return out

    def status_at(self, now: datetime) -> DispatchStatus:
        if self.cancelled_at is not None:
            return DispatchStatus.CANCELLED
        if now >= self.end:
            return DispatchStatus.COMPLETED
        return DispatchStatus.ACTIVE if now >= self.dtstart else DispatchStatus.SCHEDULED

    def event_id(self, n: int) -> str:
        return f"{self.dispatch_id}.{n}"


class DispatchMember(Model):
    """One member DER of a dispatch: its capacity, state and kW per slot."""

    dispatch_id: str
    device_id: str
    ven_id: str
    resource_id: str = ""
    aggregator_id: str | None = None  # the DER's tenant, for scoped reads
    account_id: str | None = None
    capacity_kw: float = 0.0
    state: MemberState = MemberState.ASSIGNED
    reason: str | None = None
    event_id: str | None = None  # its VEN's event (None: never sent one)
    assigned_kw: list[float] = Field(default_factory=list)  # per slot


@dataclass(slots=True)
class Candidate:
    """A group member as the group side reports it (registry.groups.group_members)."""

    device_id: str
    ven_id: str
    device_type: str = "demand"
    device_class: str = "other"
    max_capacity: float | None = None  # W
    available_capacity: float | None = None  # W
    liveness: str = "online"
    dr_availability: bool = True

    @property
    def capacity_kw(self) -> float:
        w = self.available_capacity if self.available_capacity is not None else (
            self.max_capacity)
        return max(0.0, (w or 0.0) / 1000.0)


def split(requested_kw: float, capacities: list[float]) -> list[float]:
    """Per member kW: ``cap * min(1, requested / sum(caps))`` (proportional, capped)."""
    total = sum(capacities)
    if total <= 0 or requested_kw <= 0:
        return [0.0] * len(capacities)
    f = min(1.0, requested_kw / total)
    return [round(c * f, KW_DECIMALS) for c in capacities]


def eligibility(c: Candidate, opted_out: bool) -> str | None:
    """Why a candidate cannot take part (None: it can)."""
    if c.liveness == "offline":
        return "offline"
    if not c.dr_availability:
        return "dr_availability false"
    if opted_out:
        return "optOut schedule"
    if c.capacity_kw <= 0:
        return "no available capacity"
    return None


def assign(dispatch: GroupDispatch, members: list[DispatchMember], from_slot: int = 0) -> None:
    """(Re)compute ``assigned_kw`` of the slots from ``from_slot`` on, in place: assigned
    members share each slot's request; the others get 0 there (earlier slots are kept)."""
    live = [m for m in members if m.state is MemberState.ASSIGNED]
    caps = [m.capacity_kw for m in live]
    for m in members:
        if len(m.assigned_kw) != len(dispatch.slots):
            m.assigned_kw = (m.assigned_kw + [0.0] * len(dispatch.slots))[:len(dispatch.slots)]
        if m.state is not MemberState.ASSIGNED:
            for i in range(from_slot, len(dispatch.slots)):
                m.assigned_kw[i] = 0.0
    if dispatch.mode is not DispatchMode.POWER:
        for m in live:  # connect/disconnect: membership only, no kW
            for i in range(from_slot, len(dispatch.slots)):
                m.assigned_kw[i] = 0.0
        return
    for i in range(from_slot, len(dispatch.slots)):
        for m, kw in zip(live, split(dispatch.slots[i].kw, caps), strict=True):
            m.assigned_kw[i] = kw


def first_open_slot(dispatch: GroupDispatch, now: datetime) -> int:
    """The first slot that has not ended at ``now`` (len(slots) when all have)."""
    for i, (_, end) in enumerate(dispatch.slot_bounds()):
        if end > now:
            return i
    return len(dispatch.slots)


def per_ven(members: list[DispatchMember]) -> dict[str, list[DispatchMember]]:
    """Assigned members by VEN, VENs in ven_id order, members in device_id order."""
    out: dict[str, list[DispatchMember]] = {}
    for m in sorted(members, key=lambda m: (m.ven_id, m.device_id)):
        if m.state is MemberState.ASSIGNED:
            out.setdefault(m.ven_id, []).append(m)
    return out
