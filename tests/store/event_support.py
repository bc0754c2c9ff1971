"""Builders shared by the DR event and opt schedule contract tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from registry.events import (
    DrEvent,
    EventDelivery,
    EventSignal,
    EventTargets,
    OptSchedule,
    OptType,
    OptWindow,
    SignalInterval,
    SignalName,
)
from registry.models import Der, Ven
from registry.port import Batch, Scope, Store
from tests.store.support import T0, fleet, seed

AGG1 = Scope("aggregator", aggregator_id="agg1")
AGG2 = Scope("aggregator", aggregator_id="agg2")
ACC1 = Scope("prosumer", account_id="acc1")
ACC2 = Scope("prosumer", account_id="acc2")
START = T0 + timedelta(hours=1)


def event(event_id: str = "ev-1", *, duration_s: float = 3600.0, dtstart: datetime = START,
          targets: EventTargets | None = None, **kw: object) -> DrEvent:
    signal = EventSignal(signal_name=SignalName.SIMPLE, signal_type="level",
                         intervals=[SignalInterval(duration_s=duration_s, value=1)])
    fields: dict[str, object] = dict(
        event_id=event_id, program="p1", dtstart=dtstart, duration_s=duration_s,
        signals=[signal], targets=targets or EventTargets(ven_ids=["x"]),
        created_at=T0, modified_at=T0)
    fields.update(kw)
    return DrEvent(**fields)  # type: ignore[arg-type]


async def world(store: Store) -> tuple[list[Ven], list[Der], Ven]:
    """fleet() (osb-1: agg1/acc1 d00-d03, osb-2: agg2/acc2 d04-d08) and a VEN of agg1
    without DERs."""
    vens, ders = fleet()
    empty = Ven(ven_name="osb-empty", registered=True, aggregator_id="agg1",
                account_id="acc9")
    await seed(store, *vens, empty, ders=ders)
    return vens, ders, empty


def share(d: EventDelivery, event_id: str) -> EventDelivery:
    return d.model_copy(update={"event_id": event_id})


async def create(store: Store, ev: DrEvent, scope: Scope) -> list[EventDelivery]:
    """What event_manager.create_event commits: the event, its deliveries, markers."""
    deliveries = [share(d, ev.event_id)
                  for d in await store.resolve_targets(ev.targets, scope)]
    await store.commit(Batch(events=[ev], event_expect=[(ev.event_id, None)],
                             deliveries=deliveries,
                             distribute_to=[d.ven_id for d in deliveries]))
    return deliveries


def schedule(ven: Ven, opt_id: str, *windows: tuple[datetime, float],
             opt_type: OptType = OptType.OUT, devices: list[Der] | None = None,
             **kw: object) -> OptSchedule:
    fields: dict[str, object] = dict(
        opt_id=opt_id, ven_id=ven.ven_id, aggregator_id=ven.aggregator_id,
        account_id=ven.account_id, opt_type=opt_type, opt_reason="participating",
        resource_ids=[d.resource_id for d in devices or []],
        device_ids=[d.device_id for d in devices or []],
        windows=[OptWindow(start=s, duration_s=d) for s, d in windows], created_at=T0)
    fields.update(kw)
    return OptSchedule(**fields)  # type: ignore[arg-type]
