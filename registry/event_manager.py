"""Create, modify and cancel DR events; advance their status. One Batch per action.

Used by the HTTP API and the CLI alike (no HTTP or OpenADR here). Targets are resolved
by the store inside the caller's scope, and an event whose explicit targets are not all
visible is refused as a whole (the same answer for "unknown" and "not yours", so the
refusal reveals nothing). Every VEN whose share changes is owed a distribute: the
outbox gets one marker per VEN and the poll builds the message from the VEN's current
events, so a VEN that misses one message still converges on the next.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from registry.events import DrEvent, EventDelivery, EventStatus, EventTargets
from registry.models import LogEntry
from registry.port import SERVICE, Batch, Conflict, Scope, Store

MAX_REPORTED_IDS = 10


class EventError(Exception):
    """A refusal the API maps to a problem+json (``status``) and the CLI to one line."""

    status = 400

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class EventNotFound(EventError):
    status = 404


class EventForbidden(EventError):
    status = 403


class EventConflict(EventError):
    status = 409


def _entry(kind: str, event: DrEvent, actor: str, at: datetime, **data: Any) -> LogEntry:
    return LogEntry(kind=kind, at=at, actor=actor, aggregator_id=event.aggregator_id,
                    data={"event_id": event.event_id,
                          "modification_number": event.modification_number, **data})


async def _resolve(store: Store, targets: EventTargets, scope: Scope) -> list[EventDelivery]:
    if not targets:
        raise EventError("an event needs at least one target (ven_ids, device_ids or groups)",
                         "targets")
    deliveries = await store.resolve_targets(targets, scope)
    found_vens = {d.ven_id for d in deliveries}
    found_ders = {dev for d in deliveries for dev in d.device_ids}
    missing_vens = [v for v in targets.ven_ids if v not in found_vens]
    missing_ders = [d for d in targets.device_ids if d not in found_ders]
    for name, missing in (("targets.ven_ids", missing_vens), ("targets.device_ids", missing_ders)):
        if missing:
            shown = ", ".join(missing[:MAX_REPORTED_IDS])
            more = f" and {len(missing) - MAX_REPORTED_IDS} more" if len(missing) > 10 else ""
            raise EventError(f"unknown or not in your scope: {shown}{more}", name)
    if not deliveries:
        raise EventError("the targets match no VEN or DER in your scope", "targets")
    return deliveries


def _owned(event: DrEvent, scope: Scope) -> None:
    """Only the creating tenant (or a service) may change an event."""
    if scope.is_service:
        return
    if scope.role != "aggregator" or event.aggregator_id != scope.aggregator_id:
        raise EventForbidden("only the tenant that created an event may change it")


async def create_event(
    store: Store, event: DrEvent, scope: Scope, *, actor: str, now: datetime
) -> tuple[DrEvent, list[EventDelivery]]:
    if scope.role == "prosumer":
        raise EventForbidden("prosumers cannot dispatch events")
    event = event.model_copy(update={
        "modification_number": 0, "created_by": actor, "created_at": now,
        "modified_at": now, "cancelled_at": None,
        "aggregator_id": None if scope.is_service else scope.aggregator_id,
    })
    event = event.model_copy(update={"status": event.status_at(now)})
    deliveries = await _resolve(store, event.targets, scope)
    for d in deliveries:
        d.event_id = event.event_id
    ders = sum(len(d.device_ids) for d in deliveries)
    batch = Batch(
        events=[event], event_expect=[(event.event_id, None)], deliveries=deliveries,
        distribute_to=[d.ven_id for d in deliveries],
        log=[_entry("event.created", event, actor, now, program=event.program,
                    vens=len(deliveries), ders=ders, dtstart=event.dtstart.isoformat())],
    )
    try:
        await store.commit(batch)
    except Conflict:
        raise EventConflict(f"event {event.event_id} exists already", "event_id") from None
    return event, deliveries


async def _current(store: Store, event_id: str, scope: Scope) -> DrEvent:
    event = await store.get_event(event_id, scope)
    if event is None:
        raise EventNotFound(f"no event {event_id}")
    _owned(event, scope)
    return event


async def modify_event(
    store: Store, event_id: str, changes: dict[str, Any], scope: Scope, *, actor: str,
    now: datetime, if_modification: int | None = None,
) -> DrEvent:
    """Apply ``changes`` (fields of DrEvent), bump modificationNumber, redistribute."""
    current = await _current(store, event_id, scope)
    if if_modification is not None and if_modification != current.modification_number:
        raise EventConflict(
            f"event {event_id} is at modification {current.modification_number}, "
            f"not {if_modification}")
    if current.status_at(now) in (EventStatus.COMPLETED, EventStatus.CANCELLED):
        raise EventConflict(f"event {event_id} is {current.status_at(now).value}")
    fixed = {"event_id", "modification_number", "created_by", "aggregator_id", "created_at",
             "modified_at", "cancelled_at", "status"}
    bad = sorted(set(changes) & fixed)
    if bad:
        raise EventError(f"{bad[0]} cannot be changed", bad[0])
    data = current.model_dump()
    data.update(changes)
    data.update(modification_number=current.modification_number + 1, modified_at=now)
    new = DrEvent.model_validate(data)
    new = new.model_copy(update={"status": new.status_at(now)})
    old_deliveries = await store.deliveries_of_event(event_id, scope)
    old_vens = {d.ven_id for d in old_deliveries}
    batch = Batch(events=[new], event_expect=[(event_id, current.modification_number)])
    if "targets" in changes:
        deliveries = await _resolve(store, new.targets, scope)
        by_ven = {d.ven_id: d for d in old_deliveries}
        for d in deliveries:  # keep what each VEN was sent and answered
            d.event_id = event_id
            old = by_ven.get(d.ven_id)
            if old is not None:
                d.delivered_mod, d.delivered_at = old.delivered_mod, old.delivered_at
                d.opt, d.opt_mod, d.opt_at = old.opt, old.opt_mod, old.opt_at
                d.resource_opts = {r: o for r, o in old.resource_opts.items()
                                   if r in d.resource_ids}
        new_vens = {d.ven_id for d in deliveries}
        batch.deliveries = deliveries
        batch.delete_deliveries = [(event_id, v) for v in sorted(old_vens - new_vens)]
        batch.distribute_to = sorted(old_vens | new_vens)
    else:
        batch.distribute_to = sorted(old_vens)
    batch.log = [_entry("event.modified", new, actor, now, fields=sorted(changes),
                        vens=len(batch.distribute_to))]
    try:
        await store.commit(batch)
    except Conflict:
        raise EventConflict(f"event {event_id} was changed meanwhile; reload it") from None
    return new


async def cancel_event(
    store: Store, event_id: str, scope: Scope, *, actor: str, now: datetime
) -> DrEvent:
    current = await _current(store, event_id, scope)
    status = current.status_at(now)
    if status is EventStatus.CANCELLED:
        return current  # idempotent
    if status is EventStatus.COMPLETED:
        raise EventConflict(f"event {event_id} is completed")
    new = current.model_copy(update={
        "modification_number": current.modification_number + 1, "modified_at": now,
        "cancelled_at": now, "status": EventStatus.CANCELLED,
    })
    deliveries = await store.deliveries_of_event(event_id, scope)
    batch = Batch(
        events=[new], event_expect=[(event_id, current.modification_number)],
        distribute_to=sorted({d.ven_id for d in deliveries}),
        log=[_entry("event.cancelled", new, actor, now, vens=len(deliveries))],
    )
    try:
        await store.commit(batch)
    except Conflict:
        raise EventConflict(f"event {event_id} was changed meanwhile; reload it") from None
    return new


# transitions after which VENs are sent a fresh distribute (status and currentValue), for
# VENs that do not compute an event's status themselves
REDISTRIBUTE_ON = frozenset({EventStatus.NEAR, EventStatus.ACTIVE})


async def advance_statuses(store: Store, now: datetime) -> list[tuple[str, str, str]]:
    """Log each due status transition once across processes (conditional on the old)."""
    changed: list[tuple[str, str, str]] = []
    for event in await store.open_events():
        new = event.status_at(now)
        if new is event.status:
            continue
        batch = Batch(
            event_status=[(event.event_id, event.status, new)],
            log=[_entry("event.status", event, "vtn", now, **{"from": event.status.value,
                                                              "to": new.value})],
        )
        if new in REDISTRIBUTE_ON:
            deliveries = await store.deliveries_of_event(event.event_id, SERVICE)
            batch.distribute_to = sorted({d.ven_id for d in deliveries})
        try:
            await store.commit(batch)
        except Conflict:
            continue  # another process logged it
        changed.append((event.event_id, event.status.value, new.value))
    return changed
