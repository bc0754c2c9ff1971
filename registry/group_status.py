"""Status roll-up and flexibility forecast of a DER group (docs/der-groups.md).

Both are one measured full pass over the members plus a few small reads: the events
active (or scheduled) and their deliveries, and the optOut schedules in force. The
roll-up's pass runs in the store (``Store.group_tally``: one GROUP BY on SQLite, a scan
of narrow member rows on MongoDB); the forecast reads the member rows
(``registry.groups.iter_members``). bench/groups_bench.py measures both at 100k members;
nothing is kept per DER, so status changes cost the write path nothing (no counters to
update on every report).

Roll-up: member count, online/stale/offline, DR-available, members in an active event,
members opted out now, Σ max and Σ available capacity in total, per device type and per
device class.

Forecast, per slot [t, t + slot): available_w(t) = Σ available_capacity of the members
that are available (``availability`` and ``dr_availability``), online now, not under an
optOut window covering t, and not already in an event (not opted out of) covering t.
``committed_w`` is that capacity of members in an event, ``opted_out_w`` of members opted
out, ``stale_w`` of available members whose VEN is stale now (not counted as
available). Liveness now is assumed for the whole horizon.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from registry.events import DrEvent, EventStatus, OptType
from registry.group_model import Group, TallyRow
from registry.groups import iter_members, valid
from registry.models import DeviceClass, DeviceType
from registry.port import Scope, Store, owner_scope

ONLINE, STALE, OFFLINE = "online", "stale", "offline"
MAX_SLOTS = 2000
_OUT = OptType.OUT


@dataclass(slots=True)
class Tally:
    members: int = 0
    online: int = 0
    max_capacity_w: float = 0.0
    available_capacity_w: float = 0.0

    def add(self, row: TallyRow) -> None:
        self.members += row.members
        self.online += row.members if row.liveness == ONLINE else 0
        self.max_capacity_w += row.max_capacity_w
        self.available_capacity_w += row.available_capacity_w


@dataclass(slots=True)
class Rollup:
    group_id: str
    name: str
    aggregator_id: str | None
    at: datetime
    members: int = 0
    liveness: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        (ONLINE, STALE, OFFLINE), 0))
    dr_available: int = 0
    in_active_event: int = 0
    opted_out_now: int = 0
    total: Tally = field(default_factory=Tally)
    by_type: dict[str, Tally] = field(default_factory=lambda: {
        t.value: Tally() for t in DeviceType})
    by_class: dict[str, Tally] = field(default_factory=lambda: {
        c.value: Tally() for c in DeviceClass})

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["at"] = self.at.isoformat()
        return out

    def digest(self) -> str:
        """What changes it (everything but ``at``), for change detection."""
        body = self.as_json()
        body.pop("at")
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]


async def _event_spans(store: Store, group: Group, start: datetime, end: datetime
                       ) -> list[tuple[datetime, datetime | None, set[str]]]:
    """(start, end or None, device ids not opted out) of the owner's events that overlap
    [start, end) and are not cancelled: what is already asked of the members."""
    scope = owner_scope(group)
    spans = []
    for event in await store.open_events():
        if not _overlaps(event, start, end):
            continue
        devices: set[str] = set()
        for d in await store.deliveries_of_event(event.event_id, scope):
            if d.opt == _OUT:
                continue
            devices.update(dev for dev, res in zip(d.device_ids, d.resource_ids, strict=False)
                           if d.resource_opts.get(res) != _OUT)
        if devices:
            spans.append((event.dtstart, event.end, devices))
    return spans


def _overlaps(event: DrEvent, start: datetime, end: datetime) -> bool:
    if event.status_at(start) == EventStatus.CANCELLED:
        return False
    stop = event.end
    return event.dtstart < end and (stop is None or stop > start)


async def _opted_out(store: Store, group: Group, at: datetime) -> tuple[set[str], set[str]]:
    """(VENs opted out whole, device ids opted out) by optOut windows covering ``at``."""
    vens: set[str] = set()
    devices: set[str] = set()
    for opt in await store.opts_covering(at, owner_scope(group), _OUT):
        if opt.device_ids:
            devices.update(opt.device_ids)
        elif not opt.resource_ids:
            vens.add(opt.ven_id)
    return vens, devices


async def rollup(store: Store, group: Group, scope: Scope, now: datetime) -> Rollup:
    """The group's status now, as the caller in ``scope`` may see it."""
    out = Rollup(group.group_id, group.name, group.aggregator_id, now)
    if not valid(group):
        return out
    spans = await _event_spans(store, group, now, now + timedelta(microseconds=1))
    in_event = set().union(*(s[2] for s in spans)) if spans else set()
    out_vens, out_devices = await _opted_out(store, group, now)
    rows = await store.group_tally(group, scope, in_event, out_vens, out_devices)
    for row in sorted(rows, key=lambda r: (r.device_type, r.device_class, r.liveness,
                                           r.dr_available)):
        out.members += row.members
        out.liveness[row.liveness] = out.liveness.get(row.liveness, 0) + row.members
        out.dr_available += row.members if row.dr_available else 0
        out.in_active_event += row.in_event
        out.opted_out_now += row.opted_out
        out.total.add(row)
        out.by_type.setdefault(row.device_type, Tally()).add(row)
        out.by_class.setdefault(row.device_class, Tally()).add(row)
    for tally_ in (out.total, *out.by_type.values(), *out.by_class.values()):
        tally_.max_capacity_w = round(tally_.max_capacity_w, 3)
        tally_.available_capacity_w = round(tally_.available_capacity_w, 3)
    return out


class ForecastError(ValueError):
    """A horizon or slot the forecast does not take."""


async def forecast(store: Store, group: Group, scope: Scope, start: datetime,
                   horizon: timedelta, slot: timedelta) -> dict[str, Any]:
    """Available flexibility per slot (formula in the module docstring)."""
    if slot <= timedelta(0) or horizon <= timedelta(0):
        raise ForecastError("horizon and slot must be positive")
    n = int(horizon / slot)
    if n < 1 or n > MAX_SLOTS:
        raise ForecastError(f"1 to {MAX_SLOTS} slots (horizon / slot), got {n}")
    capacity: dict[str, tuple[float, str]] = {}  # eligible online member -> (W, type)
    by_ven: dict[str, list[str]] = {}
    base: dict[str, float] = {t.value: 0.0 for t in DeviceType}
    stale_w = 0.0
    members = 0
    async for page in iter_members(store, scope, group):
        for m in page:
            members += 1
            if not (m.availability and m.dr_availability):
                continue
            w = m.available_capacity or 0.0
            if m.liveness == STALE:
                stale_w += w
            if m.liveness != ONLINE:
                continue
            capacity[m.device_id] = (w, m.device_type)
            by_ven.setdefault(m.ven_id, []).append(m.device_id)
            base[m.device_type] = base.get(m.device_type, 0.0) + w
    spans = await _event_spans(store, group, start, start + n * slot)
    slots = []
    for i in range(n):
        t = start + i * slot
        out_vens, out_devices = await _opted_out(store, group, t) if capacity else (set(), set())
        opted = {d for v in out_vens for d in by_ven.get(v, ())}
        opted |= out_devices & capacity.keys()
        committed = set()
        for s0, s1, devices in spans:
            if s0 <= t and (s1 is None or t < s1):
                committed |= devices & capacity.keys()
        committed -= opted
        per_type = dict(base)
        for d in opted | committed:
            w, kind = capacity[d]
            per_type[kind] -= w
        slots.append({
            "start": t.isoformat(), "end": (t + slot).isoformat(),
            "available_w": round(sum(per_type.values()), 3),
            "by_type": {k: round(v, 3) for k, v in per_type.items()},
            "members_available": len(capacity) - len(opted | committed),
            "committed_w": round(sum(capacity[d][0] for d in committed), 3),
            "opted_out_w": round(sum(capacity[d][0] for d in opted), 3),
        })
    return {"group_id": group.group_id, "name": group.name, "start": start.isoformat(),
            "slot_s": slot.total_seconds(), "members": members,
            "stale_w": round(stale_w, 3), "slots": slots}
