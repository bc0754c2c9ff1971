"""Scheduled work for group dispatches: the re-dispatch pass (registry.dispatch_manager).

Runs every ``events.status_interval_s`` next to the event status job. Every write is
conditional on the dispatch's rev and its events' modification numbers, so several VTN
processes can run it at once: one commits each change, the others skip it.
"""

from __future__ import annotations

import logging

from registry.dispatch_manager import redispatch_open
from registry.port import StoreError
from vtn.services.base import Context

log = logging.getLogger(__name__)


async def tick(ctx: Context) -> list[str]:
    """Move the share of members that opted out, went offline or left the group."""
    try:
        changed = await redispatch_open(ctx.store, ctx.clock())
    except StoreError as exc:
        log.warning("group re-dispatch job: store unavailable (%s); retrying next tick", exc)
        return []
    for dispatch_id in changed:
        log.info("group dispatch %s: re-dispatched", dispatch_id)
    return changed
