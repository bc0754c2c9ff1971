"""EiEvent: what a VEN is asked to do, and its optIn / optOut answers.

- ``oadrRequestEvent`` and a poll that finds the VEN's distribute marker both answer
  with every event current for the VEN (vtn.services.distribute), recorded as delivered.
- ``oadrCreatedEvent`` records one answer per event: unknown eventID (or an event that
  was never meant for this VEN) is 452, a modificationNumber below the event's current
  one is 450 (the VEN answered an old version), above it 452. All answers of a message
  are checked before any is stored (nothing half-written).
"""

from __future__ import annotations

from registry.events import DrEvent, EventDelivery, OptType
from registry.port import SERVICE, Batch, OptAnswer
from vtn.codec import messages as m
from vtn.services.base import Context, OadrError, log, ok, registered_ven
from vtn.services.distribute import distribute

DISTRIBUTE = "oadrDistributeEvent"


async def distribute_for(
    ctx: Context, ven_id: str, request_id: str, reply_limit: int | None = None
) -> m.DistributeEvent:
    """The VEN's distribute, built now; what it carries is recorded as delivered."""
    now = ctx.clock()
    current = await ctx.store.events_for_ven(ven_id, now)
    msg = distribute(request_id, ctx.vtn_id, current, now, reply_limit)
    carried = {e.event_id for e in msg.events}
    delivered = [
        (event.event_id, ven_id, event.modification_number, now)
        for event, delivery in current
        if event.event_id in carried and delivery.delivered_mod != event.modification_number
    ]
    if delivered:
        await ctx.store.commit(Batch(delivered=delivered))
    return msg


async def request_event(
    ctx: Context, msg: m.RequestEvent, fingerprint: str | None = None
) -> m.DistributeEvent:
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    return await distribute_for(ctx, ven.ven_id, msg.request_id, msg.reply_limit)


async def answered_event(
    ctx: Context, ven_id: str, event_id: str, modification_number: int | None
) -> tuple[DrEvent, EventDelivery, int]:
    """The event and this VEN's share of it, for an answer naming (id, modification)."""
    delivery = await ctx.store.get_delivery(event_id, ven_id)
    event = await ctx.store.get_event(event_id, SERVICE) if delivery is not None else None
    if event is None or delivery is None:
        raise OadrError(m.INVALID_ID, f"unknown eventID {event_id}")
    mod = event.modification_number if modification_number is None else modification_number
    if mod < event.modification_number:
        raise OadrError(m.OUT_OF_SEQUENCE,
                        f"event {event_id} is at modificationNumber {event.modification_number}")
    if mod > event.modification_number:
        raise OadrError(m.INVALID_ID, f"event {event_id} has no modificationNumber {mod}")
    return event, delivery, mod


async def created_event(
    ctx: Context, msg: m.CreatedEvent, fingerprint: str | None = None
) -> m.Response:
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    now = ctx.clock()
    batch = Batch()
    for r in msg.event_responses:
        if r.opt_type not in (OptType.IN, OptType.OUT):
            raise OadrError(m.INVALID_DATA, f"optType {r.opt_type!r} is not optIn or optOut")
        _, _, mod = await answered_event(ctx, ven.ven_id, r.event_id, r.modification_number)
        batch.opt_answers.append(OptAnswer(r.event_id, ven.ven_id, OptType(r.opt_type), mod, now))
        batch.log.append(log("event.opt", ven, now, actor="ven", event_id=r.event_id,
                             modification_number=mod, opt=r.opt_type))
    if batch:
        await ctx.store.commit(batch)
    return m.Response(ok(msg.response.request_id), ven_id=ven.ven_id)
