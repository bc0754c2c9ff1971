"""Store port for demand-response events, their per-VEN deliveries and opt schedules.

Writes go through ``Batch`` like everything else (its "demand response" fields); the
reads below all take a :class:`Scope` where they can reveal another tenant's records,
except the ones the OpenADR side calls for an authenticated VEN (``*_for_ven``).

Scope rules (applied inside the queries):
- a service sees every event and delivery;
- an aggregator sees the events it created and the events with a delivery to one of its
  VENs, and of any event only the deliveries to its own VENs;
- a prosumer sees the events with a delivery to one of its VENs (account), and only
  those deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from registry.events import (
    DrEvent,
    EventDelivery,
    EventStatus,
    EventTargets,
    OptSchedule,
    OptType,
)
from registry.port.scope import Scope


@dataclass(slots=True)
class EventQuery:
    status: list[EventStatus] | None = None  # the stored (last logged) status
    ven_id: str | None = None  # events with a delivery to this VEN
    device_id: str | None = None  # events targeting this DER
    starts_after: datetime | None = None  # dtstart >= this
    starts_before: datetime | None = None  # dtstart < this
    aggregator_id: str | None = None  # created by this tenant (a service's filter)
    program: str | None = None
    limit: int = 100
    after_event_id: str | None = None  # keyset paging on event_id


@dataclass(slots=True)
class OptAnswer:
    """A VEN's optIn/optOut for one event (oadrCreatedEvent, or an oadrCreateOpt that
    names the event), applied in place so concurrent answers are never lost."""

    event_id: str
    ven_id: str
    opt: OptType
    modification_number: int
    at: datetime
    resource_ids: list[str] = field(default_factory=list)  # [] = the whole VEN


def build_deliveries(
    vens: dict[str, tuple[str | None, str | None]],
    found: dict[str, tuple[str, str, str | None, str | None]],
) -> list[EventDelivery]:
    """resolve_targets' answer from what an adapter found: ``vens`` (ven_id ->
    aggregator_id, account_id) and ``found`` (device_id -> ven_id, resource_id and the
    DER's tenant, used when its VEN is not known). One delivery per VEN in ven_id order
    (event_id left empty for the caller), its DERs in resource_id order."""
    per_ven: dict[str, list[tuple[str, str]]] = {}
    tenants: dict[str, tuple[str | None, str | None]] = {}
    for device_id, (v, resource_id, agg, acc) in found.items():
        per_ven.setdefault(v, []).append((resource_id, device_id))
        tenants.setdefault(v, (agg, acc))
    out = []
    for v in sorted(vens.keys() | per_ven.keys()):
        agg, acc = vens.get(v) or tenants[v]
        ders = sorted(per_ven.get(v, []))
        out.append(EventDelivery(event_id="", ven_id=v, aggregator_id=agg, account_id=acc,
                                 device_ids=[d for _, d in ders],
                                 resource_ids=[r for r, _ in ders]))
    return out


def owned_deliveries(deliveries: list[EventDelivery], events: list[DrEvent]
                     ) -> list[EventDelivery]:
    """Batch.deliveries as the adapters write them: resolve_targets answers without an
    event_id (event_manager commits its answer as is), so a delivery whose event_id is
    empty belongs to the batch's one event; with none or several, it is an error."""
    if all(d.event_id for d in deliveries):
        return deliveries
    if len(events) != 1:
        raise ValueError("a delivery without event_id needs exactly one event in the batch")
    event_id = events[0].event_id
    return [d if d.event_id else d.model_copy(update={"event_id": event_id})
            for d in deliveries]


class EventStore(Protocol):
    async def get_event(self, event_id: str, scope: Scope) -> DrEvent | None: ...

    async def list_events(self, query: EventQuery, scope: Scope) -> list[DrEvent]:
        """Events in the scope, in event_id order after ``query.after_event_id``."""
        ...

    async def open_events(self) -> list[DrEvent]:
        """Every event whose stored status is not final (the status job's input)."""
        ...

    async def resolve_targets(
        self, targets: EventTargets, scope: Scope
    ) -> list[EventDelivery]:
        """One delivery per VEN for the targeted DERs visible in ``scope``: a DER
        target adds that DER, a VEN target every DER of that VEN, a group every DER of
        the group (views of the scope's aggregator). Unknown or invisible ids are left
        out (the caller compares counts to report them)."""
        ...

    async def deliveries_of_event(self, event_id: str, scope: Scope) -> list[EventDelivery]:
        ...

    async def events_for_ven(self, ven_id: str, now: datetime
                             ) -> list[tuple[DrEvent, EventDelivery]]:
        """The events with a delivery to this VEN that are still current at ``now``
        (DrEvent.is_current), with that delivery: what its distribute must carry. On the
        poll path, so the events come without their targets (``EventTargets()``; a
        100k-DER list is megabytes): the delivery says what this VEN gets."""
        ...

    async def get_delivery(self, event_id: str, ven_id: str) -> EventDelivery | None: ...

    async def opts_of_ven(self, ven_id: str) -> list[OptSchedule]: ...

    async def get_opt(self, ven_id: str, opt_id: str) -> OptSchedule | None: ...

    async def opts_covering(self, at: datetime, scope: Scope,
                            opt_type: OptType | None = None) -> list[OptSchedule]:
        """Schedules (not cancelled) with a window containing ``at``, in the scope."""
        ...
