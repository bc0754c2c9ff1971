"""Scheduled work for DER groups: a ``group.status`` log entry (and so an SSE event on
/api/v1/log/stream) whenever a group's roll-up changed since the last one.

Every ``[groups] status_interval_s`` each stored group's roll-up is computed (one full
pass, registry.group_status) and its digest compared with the one last published, kept
in the store beside the VEN metadata announcements under ``group:<group_id>``. The entry
and the new digest are one conditional commit, so with several processes sharing a
store each change is logged once. The interval is the rate limit: at most one entry per
group per interval, none while nothing changes.
"""

from __future__ import annotations

import logging

from registry.group_status import rollup
from registry.groups import valid
from registry.models import LogEntry
from registry.port import SERVICE, Batch, Conflict, StoreError
from vtn.services.base import Context

log = logging.getLogger(__name__)
KEY = "group:{}"


async def publish_status(ctx: Context) -> int:
    """Log the roll-up of every group that changed; returns how many were logged."""
    logged = 0
    try:
        found = await ctx.store.list_groups(SERVICE)
    except StoreError as exc:
        log.warning("group status job: store unavailable (%s); retrying next tick", exc)
        return 0
    for group in found:
        if not valid(group):
            continue
        try:
            status = await rollup(ctx.store, group, SERVICE, ctx.clock())
            key = KEY.format(group.group_id)
            digest = status.digest()
            old = await ctx.store.announced_hash(key)
            if old == digest:
                continue
            entry = LogEntry(kind="group.status", at=status.at, actor="vtn",
                             aggregator_id=group.aggregator_id, data=status.as_json())
            await ctx.store.commit(Batch(announce=[(key, old, digest)], log=[entry]))
            logged += 1
        except Conflict:
            continue  # another process published this change
        except StoreError as exc:
            log.warning("group status job: %s skipped (%s)", group.group_id, exc)
    return logged
