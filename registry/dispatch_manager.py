"""Create, cancel and re-dispatch group dispatches as DR events. One Batch per action.

Used by the HTTP API and the re-dispatch job (vtn.dispatch_jobs). A dispatch becomes one
DR event per member VEN (registry.dispatch_signals) written in the same transaction as
the dispatch record and its members; every later write is conditional on the record's
``rev`` (``Batch.dispatch_expect``) and on each touched event's modification number, so
when several processes re-dispatch at once, one commits and the others skip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from registry.dispatch_groups import (
    GroupNotFound,
    current_candidates,
    group_candidates,
    resolve_group,
    stored_ref,
)
from registry.dispatch_signals import signals_for
from registry.event_manager import EventConflict, EventError, EventForbidden, EventNotFound
from registry.events import DrEvent, EventDelivery, EventStatus, EventTargets, OptType
from registry.group_dispatch import (
    Candidate,
    DispatchMember,
    DispatchMode,
    DispatchStatus,
    GroupDispatch,
    MemberState,
    assign,
    eligibility,
    first_open_slot,
    per_ven,
)
from registry.models import LogEntry
from registry.port import SERVICE, Batch, Conflict, Scope, Store
from registry.port.dispatches import DispatchQuery

__all__ = ["EventConflict", "EventError", "EventForbidden", "EventNotFound", "create_dispatch",
           "cancel_dispatch", "redispatch", "redispatch_open"]


def _entry(kind: str, d: GroupDispatch, actor: str, at: datetime, **data: Any) -> LogEntry:
    return LogEntry(kind=kind, at=at, actor=actor, aggregator_id=d.aggregator_id,
                    data={"dispatch_id": d.dispatch_id, "group": d.group, "rev": d.rev,
                          **data})


async def _opted_out_vens(store: Store, d: GroupDispatch, scope: Scope
                          ) -> tuple[set[str], set[str]]:
    """(VENs, devices) an optOut schedule covers at some slot start of the dispatch."""
    vens: set[str] = set()
    devices: set[str] = set()
    instants = {t for t, _ in d.slot_bounds()}
    for at in sorted(instants)[:16]:  # bounded: a schedule spans slots
        for o in await store.opts_covering(at, scope, OptType.OUT):
            if o.device_ids:
                devices.update(o.device_ids)
            else:
                vens.add(o.ven_id)
    return vens, devices


def _event(d: GroupDispatch, n: int, members: list[DispatchMember], scope: Scope,
           actor: str, now: datetime, mod: int = 0) -> DrEvent:
    kw = [sum(m.assigned_kw[i] for m in members) for i in range(len(d.slots))]
    return DrEvent(
        event_id=d.event_id(n), modification_number=mod, program=d.program,
        priority=d.priority, dtstart=d.dtstart, duration_s=d.duration_s,
        signals=signals_for(d, kw), targets=EventTargets(
            device_ids=[m.device_id for m in members]),
        recovery_s=d.ramp_s or None, baseline_s=d.baseline_s, created_by=actor,
        aggregator_id=scope.aggregator_id, created_at=now, modified_at=now,
        vtn_comment=f"group dispatch {d.dispatch_id} of {d.group}",
    )


async def create_dispatch(store: Store, d: GroupDispatch, scope: Scope, *, actor: str,
                          now: datetime) -> tuple[GroupDispatch, list[DispatchMember]]:
    """Split the request over the group's eligible members and queue their events."""
    if scope.role == "prosumer":
        raise EventForbidden("prosumers cannot dispatch groups")
    if d.end <= now:
        raise EventError("the dispatch would be over before it starts", "slots")
    try:
        group = await resolve_group(store, scope, d.group)
    except GroupNotFound:
        raise EventNotFound(f"no group {d.group}", "group") from None
    candidates = await group_candidates(store, group)
    d = d.model_copy(update={"aggregator_id": group.aggregator_id, "group": stored_ref(group),
                             "group_name": group.name,
                             "rev": 0, "redispatches": 0, "created_by": actor,
                             "created_at": now, "modified_at": now, "cancelled_at": None,
                             "closed": False})
    opted_vens, opted_devices = await _opted_out_vens(store, d, scope)
    members, eligible = _members(d, candidates, opted_vens, opted_devices)
    deliveries = await store.resolve_targets(
        EventTargets(device_ids=[c.device_id for c in eligible]), scope) if eligible else []
    batch = Batch(dispatches=[d], dispatch_expect=[(d.dispatch_id, None)])
    _events_for(d, members, deliveries, scope, actor, now, batch)
    if d.mode is DispatchMode.CONNECT:
        await _end_disconnects(store, d, scope, actor, now, batch)
    batch.dispatch_members = members
    batch.log.append(_entry("dispatch.created", d, actor, now, mode=d.mode.value,
                            members=len(members), vens=len(batch.distribute_to),
                            requested_kw=[s.kw for s in d.slots]))
    try:
        await store.commit(batch)
    except Conflict:
        raise EventConflict(f"dispatch {d.dispatch_id} exists already (or one of its "
                            "events)", "dispatch_id") from None
    return d, members


def _members(d: GroupDispatch, candidates: list[Candidate], opted_vens: set[str],
             opted_devices: set[str]) -> tuple[list[DispatchMember], list[Candidate]]:
    members, eligible = [], []
    for c in candidates:
        why = eligibility(c, c.ven_id in opted_vens or c.device_id in opted_devices)
        members.append(DispatchMember(
            dispatch_id=d.dispatch_id, device_id=c.device_id, ven_id=c.ven_id,
            capacity_kw=round(c.capacity_kw, 3),
            state=MemberState.ASSIGNED if why is None else MemberState.UNAVAILABLE,
            reason=why))
        if why is None:
            eligible.append(c)
    return members, eligible


def _events_for(d: GroupDispatch, members: list[DispatchMember],
                deliveries: list[EventDelivery], scope: Scope, actor: str, now: datetime,
                batch: Batch) -> None:
    """One event per VEN with assigned members (in ven_id order: ``<id>.<n>``)."""
    by_device = {m.device_id: m for m in members}
    for d_ in deliveries:
        for dev, res in zip(d_.device_ids, d_.resource_ids, strict=True):
            m = by_device[dev]
            m.resource_id, m.aggregator_id, m.account_id = res, d_.aggregator_id, d_.account_id
    for m in members:  # resolve_targets leaves out what the scope cannot see
        if m.state is MemberState.ASSIGNED and not m.resource_id:
            m.state, m.reason = MemberState.UNAVAILABLE, "not in scope"
    assign(d, members)
    delivery_of = {x.ven_id: x for x in deliveries}
    for n, (ven_id, ms) in enumerate(per_ven(members).items()):
        event = _event(d, n, ms, scope, actor, now)
        for m in ms:
            m.event_id = event.event_id
        share = delivery_of[ven_id]
        keep = {m.device_id for m in ms}
        pairs = [(dev, r) for dev, r in zip(share.device_ids, share.resource_ids, strict=True)
                 if dev in keep]
        batch.events.append(event)
        batch.event_expect.append((event.event_id, None))
        batch.deliveries.append(share.model_copy(update={
            "event_id": event.event_id, "device_ids": [p[0] for p in pairs],
            "resource_ids": [p[1] for p in pairs]}))
        batch.distribute_to.append(ven_id)


async def _end_disconnects(store: Store, d: GroupDispatch, scope: Scope, actor: str,
                           now: datetime, batch: Batch) -> None:
    """A connect ends the group's disconnects that are not over (their events cancelled)."""
    q = DispatchQuery(group=d.group, aggregator_id=d.aggregator_id, open_only=True,
                      limit=1000)
    for old in await store.list_dispatches(q, scope):
        if old.mode is DispatchMode.DISCONNECT and old.status_at(now) in (
                DispatchStatus.SCHEDULED, DispatchStatus.ACTIVE):
            await _cancel_into(store, old, actor, now, batch)


async def _cancel_into(store: Store, d: GroupDispatch, actor: str, now: datetime,
                       batch: Batch) -> GroupDispatch:
    new = d.model_copy(update={"rev": d.rev + 1, "cancelled_at": now, "modified_at": now})
    batch.dispatches.append(new)
    batch.dispatch_expect.append((d.dispatch_id, d.rev))
    event_ids = sorted({x.event_id for x in await store.dispatch_deliveries(d.dispatch_id)})
    for event_id in event_ids:
        event = await store.get_event(event_id, SERVICE)
        if event is None or event.cancelled_at is not None or (
                event.end is not None and event.end <= now):
            continue
        batch.events.append(event.model_copy(update={
            "modification_number": event.modification_number + 1, "modified_at": now,
            "cancelled_at": now, "status": EventStatus.CANCELLED}))
        batch.event_expect.append((event_id, event.modification_number))
    batch.distribute_to.extend(
        x.ven_id for x in await store.dispatch_deliveries(d.dispatch_id))
    batch.log.append(_entry("dispatch.cancelled", new, actor, now, events=len(event_ids)))
    return new


def _owned(d: GroupDispatch, scope: Scope) -> None:
    if not scope.is_service and (scope.role != "aggregator"
                                 or d.aggregator_id != scope.aggregator_id):
        raise EventForbidden("only the group's owner (or a service) may change a dispatch")


async def cancel_dispatch(store: Store, dispatch_id: str, scope: Scope, *, actor: str,
                          now: datetime) -> GroupDispatch:
    if scope.role == "prosumer":
        raise EventForbidden("prosumers cannot change group dispatches")
    d = await store.get_dispatch(dispatch_id, scope)
    if d is None:
        raise EventNotFound(f"no dispatch {dispatch_id}")
    _owned(d, scope)
    status = d.status_at(now)
    if status is DispatchStatus.CANCELLED:
        return d
    if status is DispatchStatus.COMPLETED:
        raise EventConflict(f"dispatch {dispatch_id} is completed")
    batch = Batch()
    new = await _cancel_into(store, d, actor, now, batch)
    try:
        await store.commit(batch)
    except Conflict:
        raise EventConflict(f"dispatch {dispatch_id} was changed meanwhile; retry") from None
    return new


def _dropped(m: DispatchMember, share: EventDelivery | None, live: Candidate | None,
             opted_devices: set[str], opted_vens: set[str]) -> tuple[MemberState, str] | None:
    """Why an assigned member is out now (None: still in)."""
    if live is None:
        return MemberState.LEFT, "left the group"
    if share is not None and (share.opt is OptType.OUT
                              or share.resource_opts.get(m.resource_id) is OptType.OUT):
        return MemberState.OPTED_OUT, "optOut"
    if m.device_id in opted_devices or m.ven_id in opted_vens:
        return MemberState.OPTED_OUT, "optOut schedule"
    if live.liveness == "offline":
        return MemberState.OFFLINE, "offline"
    return None


async def redispatch(store: Store, d: GroupDispatch, now: datetime) -> bool:
    """React to opt-outs, offline members and members that left: move their share of the
    slots not over yet to the members still in. True when a change was committed."""
    status = d.status_at(now)
    if status in (DispatchStatus.COMPLETED, DispatchStatus.CANCELLED):
        batch = Batch(dispatches=[d.model_copy(update={"rev": d.rev + 1, "closed": True})],
                      dispatch_expect=[(d.dispatch_id, d.rev)])
        try:
            await store.commit(batch)
        except Conflict:
            pass
        return False
    owner = Scope(role="aggregator", aggregator_id=d.aggregator_id) if d.aggregator_id \
        else SERVICE
    now_in = await current_candidates(store, d.aggregator_id, d.group)
    live = {c.device_id: c for c in now_in or []}
    members = await store.dispatch_members(d.dispatch_id, SERVICE)
    shares = {x.ven_id: x for x in await store.dispatch_deliveries(d.dispatch_id)}
    window = d.model_copy(update={"dtstart": max(d.dtstart, now)}) if now < d.end else d
    opted_vens, opted_devices = await _opted_out_vens(store, window, owner)
    changed: list[DispatchMember] = []
    for m in members:
        if m.state is not MemberState.ASSIGNED:
            continue
        why = _dropped(m, shares.get(m.ven_id), live.get(m.device_id), opted_devices,
                       opted_vens)
        if why is not None:
            m.state, m.reason = why
            changed.append(m)
    if not changed:
        return False
    before = {m.device_id: list(m.assigned_kw) for m in members}
    assign(d, members, first_open_slot(d, now))
    touched = [m for m in members if m.assigned_kw != before[m.device_id]]
    new = d.model_copy(update={"rev": d.rev + 1, "redispatches": d.redispatches + 1,
                               "modified_at": now})
    batch = Batch(dispatches=[new], dispatch_expect=[(d.dispatch_id, d.rev)],
                  dispatch_members=sorted({m.device_id: m for m in changed + touched}.values(),
                                          key=lambda m: m.device_id))
    await _modify_events(store, new, members, {m.ven_id for m in changed + touched}, now,
                         batch)
    lost = sum(sum(before[m.device_id]) for m in changed)
    batch.log.append(_entry("dispatch.redispatched", new, "vtn", now, dropped=len(changed),
                            reassigned_members=len(touched), dropped_kw_slots=round(lost, 3)))
    try:
        await store.commit(batch)
    except Conflict:
        return False  # another process re-dispatched it (or an event changed): next tick
    return True


async def _modify_events(store: Store, d: GroupDispatch, members: list[DispatchMember],
                         vens: set[str], now: datetime, batch: Batch) -> None:
    """New signals (and targets) for the events of ``vens`` whose members changed."""
    by_event: dict[str, list[DispatchMember]] = {}
    for m in members:
        if m.event_id is not None and m.ven_id in vens:
            by_event.setdefault(m.event_id, []).append(m)
    current = {e.event_id: e for e in await store.dispatch_events(d.dispatch_id)}
    for event_id, ms in sorted(by_event.items()):
        event = current.get(event_id)  # without targets: they are set below
        if event is None or event.status_at(now) in (EventStatus.COMPLETED,
                                                      EventStatus.CANCELLED):
            continue
        ven_id = ms[0].ven_id
        still = [m for m in ms if m.state is MemberState.ASSIGNED]
        if not still:  # none left: an opted-out event stays as answered, else cancel it
            if all(m.state is MemberState.OPTED_OUT for m in ms):
                continue
            batch.events.append(event.model_copy(update={
                "modification_number": event.modification_number + 1, "modified_at": now,
                "cancelled_at": now, "status": EventStatus.CANCELLED,
                "targets": EventTargets(device_ids=[m.device_id for m in ms])}))
            batch.event_expect.append((event_id, event.modification_number))
            batch.distribute_to.append(ven_id)
            continue
        kw = [sum(m.assigned_kw[i] for m in still) for i in range(len(d.slots))]
        targets = EventTargets(device_ids=[m.device_id for m in still])
        new = event.model_copy(update={
            "modification_number": event.modification_number + 1, "modified_at": now,
            "signals": signals_for(d, kw), "targets": targets,
            "modification_reason": "group re-dispatch", "status": event.status_at(now)})
        batch.events.append(new)
        batch.event_expect.append((event_id, event.modification_number))
        share = await store.get_delivery(event_id, ven_id)
        if share is not None and len(share.device_ids) != len(still):
            keep = {m.device_id for m in still}
            pairs = [(dev, r) for dev, r in zip(share.device_ids, share.resource_ids,
                                                strict=True) if dev in keep]
            batch.deliveries.append(share.model_copy(update={
                "device_ids": [p[0] for p in pairs], "resource_ids": [p[1] for p in pairs]}))
        batch.distribute_to.append(ven_id)


async def redispatch_open(store: Store, now: datetime) -> list[str]:
    """One re-dispatch pass over every open dispatch; the ids that changed."""
    out = []
    for d in await store.open_dispatches():
        if await redispatch(store, d, now):
            out.append(d.dispatch_id)
    return out
