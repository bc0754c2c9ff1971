"""A group dispatch's status: requested vs assigned vs opted-in vs measured, per slot.

- requested_kw: the slot's request;
- assigned_kw: the sum of the members' shares (after re-dispatches; a slot that has
  ended keeps what was assigned while it ran);
- opted_in_kw: the shares of members whose VEN opted in to the last modification of
  its event it received (and did not opt that resource out);
- measured_kw: the load reduction the members that were sent an event delivered over
  the slot (up to now), from their telemetry: baseline (mean load over ``baseline_s``
  before dtstart, as for DR events, registry.response) minus the mean load in the slot;
  None before the slot starts or without telemetry;
- shortfall_kw: requested - assigned.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from registry.events import EventDelivery, OptType
from registry.group_dispatch import DispatchMember, GroupDispatch, MemberState
from registry.port import Scope, Store, TelemetryBucket
from registry.response import LOOKBACK, latest_buckets, mean_load


class DispatchNotFound(LookupError):
    pass


def answer_of(m: DispatchMember, share: EventDelivery | None) -> str:
    """The member's answer: optIn, optOut, pending (not sent its last change yet), no
    response, or none (never sent an event)."""
    if m.event_id is None or share is None:
        return "none"
    if share.resource_opts.get(m.resource_id) is OptType.OUT:
        return OptType.OUT.value
    if share.delivered_mod is None:
        return "pending"
    if share.opt is not None and share.opt_mod == share.delivered_mod:
        return share.opt.value
    if share.opt is OptType.OUT:
        return OptType.OUT.value  # an earlier optOut stands
    return "no response"


def _kw(w: float | None) -> float | None:
    return None if w is None else round(w / 1000.0, 3)


async def _measured(store: Store, d: GroupDispatch, devices: list[str], now: datetime
                    ) -> list[float | None]:
    """Delivered kW per slot over ``devices`` (baseline - slot mean, summed over DERs
    with both figures)."""
    bounds = d.slot_bounds()
    if not devices or now <= d.dtstart:
        return [None] * len(bounds)
    start = d.dtstart
    base_start = start - timedelta(seconds=d.baseline_s)
    until = min(d.end, now, d.cancelled_at or now)
    history = await store.telemetry_history(devices, base_start - LOOKBACK, until)
    by_der: dict[str, list[TelemetryBucket]] = defaultdict(list)
    for b in history:
        by_der[b.device_id].append(b)
    out: list[float | None] = []
    for lo, hi in bounds:
        if lo >= until:
            out.append(None)
            continue
        hi = min(hi, until)
        total, any_der = 0.0, False
        for buckets in by_der.values():
            base = [b for b in buckets if base_start <= b.bucket < start] or latest_buckets(
                [b for b in buckets if b.bucket < start])
            baseline, _ = mean_load(base)
            during, _ = mean_load([b for b in buckets if lo <= b.bucket < hi])
            if baseline is not None and during is not None:
                total += baseline - during
                any_der = True
        out.append(_kw(total) if any_der else None)
    return out


def member_out(m: DispatchMember, answer: str) -> dict[str, Any]:
    return {"device_id": m.device_id, "ven_id": m.ven_id, "state": m.state.value,
            "reason": m.reason, "capacity_kw": m.capacity_kw, "event_id": m.event_id,
            "response": answer, "assigned_kw": m.assigned_kw}


async def dispatch_status(store: Store, dispatch_id: str, scope: Scope, now: datetime,
                          members_limit: int = 1000) -> dict[str, Any]:
    d = await store.get_dispatch(dispatch_id, scope)
    if d is None:
        raise DispatchNotFound(dispatch_id)
    members = await store.dispatch_members(dispatch_id, scope)
    shares = {x.ven_id: x for x in await store.dispatch_deliveries(dispatch_id)}
    answers = {m.device_id: answer_of(m, shares.get(m.ven_id)) for m in members}
    sent = [m.device_id for m in members if m.event_id is not None]
    measured = await _measured(store, d, sent, now)
    slots = []
    for i, ((lo, hi), slot) in enumerate(zip(d.slot_bounds(), d.slots, strict=True)):
        assigned = sum(m.assigned_kw[i] for m in members if i < len(m.assigned_kw))
        opted_in = sum(m.assigned_kw[i] for m in members
                       if i < len(m.assigned_kw) and m.state is MemberState.ASSIGNED
                       and answers[m.device_id] == OptType.IN.value)
        slots.append({"start": lo.isoformat(), "end": hi.isoformat(),
                      "requested_kw": slot.kw, "assigned_kw": round(assigned, 3),
                      "opted_in_kw": round(opted_in, 3), "measured_kw": measured[i],
                      "shortfall_kw": round(max(0.0, slot.kw - assigned), 3)})
    states: dict[str, int] = defaultdict(int)
    responses: dict[str, int] = defaultdict(int)
    for m in members:
        states[m.state.value] += 1
        if m.event_id is not None:
            responses[answers[m.device_id]] += 1
    return {
        "dispatch_id": d.dispatch_id, "group": d.group, "mode": d.mode.value,
        "status": d.status_at(now).value, "rev": d.rev, "redispatches": d.redispatches,
        "slots": slots,
        "totals": {"members": len(members), "states": dict(states),
                   "responses": dict(responses), "vens": len(shares),
                   "events": len({m.event_id for m in members if m.event_id})},
        "members": [member_out(m, answers[m.device_id]) for m in members[:members_limit]],
        "members_truncated": len(members) > members_limit,
    }
