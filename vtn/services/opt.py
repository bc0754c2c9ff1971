"""EiOpt: opt schedules (availability windows) and opts for one event, per resource.

Rules (2.0b conformance, written here once):
- an opt carries either a vavailability schedule or a qualifiedEventID, not both (454);
- its resources must be the sending VEN's own (462, target mismatch); none = all of them;
- an opt for an event overrides an earlier oadrCreatedEvent answer for that event, for
  the resources it names (or the whole VEN);
- re-sending an optID replaces that schedule; oadrCancelOpt of an unknown or already
  cancelled optID is 452.
Schedules count in discovery (``available_at``): a DER under an optOut window is not
available then.
"""

from __future__ import annotations

from pydantic import ValidationError

from registry.events import OptSchedule, OptType, OptWindow
from registry.port import Batch, OptAnswer
from vtn.codec import messages as m
from vtn.services.base import Context, OadrError, log, ok, registered_ven
from vtn.services.events import answered_event


async def create_opt(
    ctx: Context, msg: m.CreateOpt, fingerprint: str | None = None
) -> m.CreatedOpt:
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    now = ctx.clock()
    if msg.opt_type not in (OptType.IN, OptType.OUT):
        raise OadrError(m.INVALID_DATA, f"optType {msg.opt_type!r} is not optIn or optOut")
    if (msg.event_id is None) == (not msg.availability):
        raise OadrError(m.INVALID_DATA,
                        "an opt carries either a vavailability schedule or a qualifiedEventID")
    by_resource = {d.resource_id: d.device_id for d in await ctx.store.ders_of_ven(ven.ven_id)}
    foreign = [r for r in msg.resource_ids if r not in by_resource]
    if foreign:
        raise OadrError(m.TARGET_MISMATCH, f"resourceID {foreign[0]} is not this VEN's")
    mod = msg.modification_number
    if msg.event_id is not None:
        _, _, mod = await answered_event(ctx, ven.ven_id, msg.event_id, mod)
    try:
        schedule = OptSchedule(
            opt_id=msg.opt_id, ven_id=ven.ven_id, aggregator_id=ven.aggregator_id,
            account_id=ven.account_id, opt_type=OptType(msg.opt_type),
            opt_reason=msg.opt_reason, market_context=msg.market_context,
            event_id=msg.event_id, modification_number=mod,
            resource_ids=list(msg.resource_ids),
            device_ids=[by_resource[r] for r in msg.resource_ids],
            windows=[OptWindow(start=s, duration_s=d.total_seconds())
                     for s, d in msg.availability],
            created_at=now,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise OadrError(m.INVALID_DATA, f"{where}: {err['msg']}") from None
    batch = Batch(opts=[schedule], log=[log(
        "opt.created", ven, now, actor="ven", opt_id=msg.opt_id, opt_type=msg.opt_type,
        reason=msg.opt_reason, event_id=msg.event_id, resources=len(msg.resource_ids),
        windows=len(schedule.windows),
    )])
    if msg.event_id is not None and mod is not None:
        batch.opt_answers.append(OptAnswer(msg.event_id, ven.ven_id, OptType(msg.opt_type),
                                           mod, now, resource_ids=list(msg.resource_ids)))
    await ctx.store.commit(batch)
    return m.CreatedOpt(response=ok(msg.request_id), opt_id=msg.opt_id)


async def cancel_opt(
    ctx: Context, msg: m.CancelOpt, fingerprint: str | None = None
) -> m.CanceledOpt:
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    now = ctx.clock()
    schedule = await ctx.store.get_opt(ven.ven_id, msg.opt_id)
    if schedule is None or schedule.cancelled_at is not None:
        raise OadrError(m.INVALID_ID, f"unknown optID {msg.opt_id}")
    cancelled = schedule.model_copy(update={"cancelled_at": now})
    await ctx.store.commit(Batch(opts=[cancelled], log=[log(
        "opt.cancelled", ven, now, actor="ven", opt_id=msg.opt_id, event_id=schedule.event_id,
    )]))
    return m.CanceledOpt(response=ok(msg.request_id), opt_id=msg.opt_id)
