"""EiEvent, EiOpt and OadrPoll.

Events and opt schedules arrive with a later issue; until then the VTN answers with the
valid empty distribute and well-formed refusals, never an error page.
"""

from __future__ import annotations

from vtn.codec import messages as m
from vtn.services.base import Context, OadrError, ok, registered_state, registered_ven


async def request_event(
    ctx: Context, msg: m.RequestEvent, fingerprint: str | None = None
) -> m.DistributeEvent:
    await registered_ven(ctx, msg.ven_id, fingerprint)
    return m.DistributeEvent(
        request_id=msg.request_id, vtn_id=ctx.vtn_id, response=ok(msg.request_id)
    )


async def created_event(
    ctx: Context, msg: m.CreatedEvent, fingerprint: str | None = None
) -> m.Response:
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    if msg.event_responses:
        raise OadrError(m.INVALID_ID, f"unknown eventID {msg.event_responses[0].event_id}")
    return m.Response(ok(msg.response.request_id), ven_id=ven.ven_id)


async def create_opt(
    ctx: Context, msg: m.CreateOpt, fingerprint: str | None = None
) -> m.CreatedOpt:
    await registered_ven(ctx, msg.ven_id, fingerprint)
    if msg.event_id is not None:
        raise OadrError(m.INVALID_ID, f"unknown eventID {msg.event_id}")
    raise OadrError(m.NOT_ALLOWED, "opt schedules are not supported yet")


async def cancel_opt(
    ctx: Context, msg: m.CancelOpt, fingerprint: str | None = None
) -> m.CanceledOpt:
    await registered_ven(ctx, msg.ven_id, fingerprint)
    raise OadrError(m.INVALID_ID, f"unknown optID {msg.opt_id}")


async def poll(ctx: Context, msg: m.Poll, fingerprint: str | None = None) -> m.Response | bytes:
    """One pending message from the VEN's durable outbox, else an empty oadrResponse.

    The hot path: one store read (no VEN document) when nothing is queued."""
    state = await registered_state(ctx, msg.ven_id, fingerprint)
    pending = await ctx.store.claim_next(state.ven_id) if state.pending else None
    if pending is not None:
        return pending.body.encode()
    return m.Response(ok(""), ven_id=state.ven_id)
