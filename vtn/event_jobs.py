"""Scheduled work for DR events: status transitions (logged once across processes), and
the telemetry rate an event raises while active (vtn.services.event_telemetry)."""

from __future__ import annotations

import logging

from registry.event_manager import advance_statuses
from registry.port import StoreError
from vtn.services import event_telemetry
from vtn.services.base import Context

log = logging.getLogger(__name__)


async def tick(ctx: Context) -> list[tuple[str, str, str]]:
    """Advance every open event's status; transitions to near/active are redistributed."""
    try:
        changed = await advance_statuses(ctx.store, ctx.clock())
    except StoreError as exc:
        log.warning("event status job: store unavailable (%s); retrying next tick", exc)
        return []
    for event_id, old, new in changed:
        log.info("event %s: %s -> %s", event_id, old, new)
    if changed:  # an event's telemetry rate is raised while active, restored after
        try:
            await event_telemetry.on_transitions(ctx, changed)
        except StoreError as exc:
            log.warning("event telemetry: store unavailable (%s)", exc)
    return changed
