"""Keep-alive tracking: coalesced contact flushes and the stale/offline sweep.

Both run as APScheduler jobs in every VTN process. The sweep is a conditional update in
the store, so when several processes sweep the same store each transition happens (and
is logged) once.
"""

from __future__ import annotations

import logging

from registry.models import LivenessChange
from vtn.metrics import METRICS
from vtn.services.base import Context

log = logging.getLogger(__name__)


async def flush_contacts(ctx: Context) -> int:
    contacts = ctx.contacts.drain()
    if not contacts:
        return 0
    try:
        await ctx.store.touch(contacts)
    except Exception:
        # keep them for the next flush; newer contacts win
        for ven_id, at in contacts.items():
            if ven_id not in ctx.contacts._pending:
                ctx.contacts.seen(ven_id, at)
        raise
    return len(contacts)


async def sweep(ctx: Context) -> list[LivenessChange]:
    await flush_contacts(ctx)
    cfg = ctx.config.liveness
    changes = await ctx.store.sweep_liveness(
        ctx.clock(), cfg.stale_after_polls, cfg.offline_after_polls
    )
    if changes:  # one line per sweep, however many VENs (250k after an outage)
        counts: dict[str, int] = {}
        for c in changes:
            counts[c.new.value] = counts.get(c.new.value, 0) + 1
            METRICS.count(METRICS.liveness, c.new.value)
            log.debug("VEN %s %s -> %s (%d DERs)", c.ven_id, c.old, c.new, c.ders)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        log.info("liveness: %d VENs changed (%s; %d DERs)", len(changes), summary,
                 sum(c.ders for c in changes))
    return changes
