"""OadrPoll: one pending message from the VEN's durable outbox, else an empty oadrResponse.

The hot path: one store read (no VEN document) when nothing is queued. A distribute is
queued as a marker (one per VEN at most) and built here, from the events current for
the VEN at this moment, so it is never stale and never leaves an event out.
"""

from __future__ import annotations

import contextlib

from registry.port import Batch
from vtn.codec import messages as m
from vtn.services.base import Context, new_request_id, ok, registered_state
from vtn.services.events import DISTRIBUTE, distribute_for


async def poll(ctx: Context, msg: m.Poll, fingerprint: str | None = None) -> m.Message | bytes:
    state = await registered_state(ctx, msg.ven_id, fingerprint)
    pending = await ctx.store.claim_next(state.ven_id) if state.pending else None
    if pending is None:
        return m.Response(ok(""), ven_id=state.ven_id)
    if pending.kind == DISTRIBUTE and not pending.body:
        try:
            return await distribute_for(ctx, state.ven_id, new_request_id())
        except Exception:
            # the marker was claimed: put it back so the VEN still gets its events
            with contextlib.suppress(Exception):
                await ctx.store.commit(Batch(distribute_to=[state.ven_id]))
            raise
    return pending.body.encode()
