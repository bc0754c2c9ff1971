"""Scheduled jobs across VTN nodes: each leased job (or each shard of it) runs on one
node at a time, under a lease with a fencing token (registry.port.leases).

Joining the mechanism is one line in ``vtn.app``::

    jobs.leased("views.tick", views.tick, seconds=cfg.tick_s)          # once across nodes
    jobs.leased("liveness.sweep", liveness.sweep, seconds=s, shards=4)  # split by VEN id
    jobs.local(history.flush, seconds=...)  # per-node state (in-memory buffers): every node

Every run of a leased job gets a Context whose store fences what the job writes: every
``commit`` carries ``Batch.fence`` and ``sweep_liveness`` gets the shard and the fence,
so a node that lost its lease (stalled past the TTL, taken over) commits nothing more.
A node holding several shards of a job runs it once over all of them (``Shard.more``),
fenced by all of their leases.

Balancing: each node keeps a presence lease ``node/<id>``; with N live nodes a node holds
at most ceil(shards / N) shards of a job, releasing extras and taking free or expired
ones at each run, so a job's work per node falls as 1/N and a killed node's shards are
taken over within one TTL.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import socket
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from registry.models import LivenessChange, LogEntry
from registry.port import Batch, Fence, Lease, LeaseLost, Shard, Store, StoreError
from registry.port.leases import Fencing
from vtn.config import JobsConfig
from vtn.services.base import Context

log = logging.getLogger(__name__)
Job = Callable[[Context], Awaitable[Any]]
NODES = "node/"


def new_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class FencedStore:
    """The store as a leased job sees it: its writes carry the lease's fence."""

    def __init__(self, inner: Store, fence: Fencing, shard: Shard) -> None:
        self._inner = inner
        self.fence = fence
        self.shard = shard

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def commit(self, batch: Batch) -> list[LogEntry]:
        if batch.fence is None:
            batch.fence = self.fence
        return await self._inner.commit(batch)

    async def sweep_liveness(
        self, now: datetime, stale_after_polls: float, offline_after_polls: float,
        *, shard: Shard | None = None, fence: Fencing = None,
    ) -> list[LivenessChange]:
        return await self._inner.sweep_liveness(
            now, stale_after_polls, offline_after_polls,
            shard=shard or self.shard, fence=fence or self.fence)


@dataclasses.dataclass(slots=True)
class LeasedJob:
    name: str
    fn: Job
    seconds: float
    shards: int


class JobRunner:
    """Registers the scheduler's jobs; leased ones run where this node holds the lease."""

    def __init__(self, ctx: Context, scheduler: AsyncIOScheduler, cfg: JobsConfig) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self.cfg = cfg
        self.node_id = cfg.node_id or new_node_id()
        self.runs: Counter[str] = Counter()  # lease name -> runs on this node
        self.held: dict[str, Lease] = {}
        self._presence: Lease | None = None
        self._heartbeat = False

    def local(self, fn: Job, *, seconds: float) -> None:
        """A job over this node's own state: runs on every node."""
        self.scheduler.add_job(fn, "interval", args=[self.ctx], seconds=seconds,
                               max_instances=1, coalesce=True)

    def leased(self, name: str, fn: Job, *, seconds: float, shards: int = 1) -> None:
        """A job over the shared store: each shard runs on one node at a time."""
        if not self.cfg.leases:
            self.local(fn, seconds=seconds)
            return
        if not self._heartbeat:
            self._heartbeat = True
            self.scheduler.add_job(self.heartbeat, "interval", seconds=self.cfg.lease_ttl_s / 3,
                                   max_instances=1, coalesce=True)
        job = LeasedJob(name, fn, seconds, max(1, shards))
        self.scheduler.add_job(self.run, "interval", args=[job], seconds=seconds,
                               max_instances=1, coalesce=True)

    def ttl_of(self, job: LeasedJob) -> float:
        return max(self.cfg.lease_ttl_s, 2.5 * job.seconds)

    async def heartbeat(self) -> None:
        """Renew this node's presence (what the others count as a live node)."""
        try:
            self._presence = await self.ctx.store.acquire_lease(
                NODES + self.node_id, self.node_id, self.cfg.lease_ttl_s, self.ctx.clock())
        except StoreError as exc:
            log.warning("node presence not renewed (%s)", exc)

    async def live_nodes(self, now: datetime) -> int:
        """The nodes whose presence has not expired (this one included)."""
        if self._presence is None:
            await self.heartbeat()
        nodes = await self.ctx.store.list_leases(NODES)
        return max(1, sum(1 for n in nodes if n.expires_at > now))

    async def balance(self, job: LeasedJob, now: datetime) -> list[Lease]:
        """Keep ceil(shards / live nodes) of the job's shards: renew, release, take."""
        store, ttl = self.ctx.store, self.ttl_of(job)
        target = math.ceil(job.shards / await self.live_nodes(now))
        by_name = {x.job: x for x in await store.list_leases(job.name + "/")}
        names = [f"{job.name}/{i}" for i in range(job.shards)]
        mine = [n for n in names if n in by_name and by_name[n].holder == self.node_id]
        for name in mine[target:]:  # more than a fair share: let the others have them
            await store.release_lease(by_name[name])
            log.info("job lease %s released by %s (rebalancing)", name, self.node_id)
        keep: list[Lease] = []
        free = [n for n in names if n not in mine and (
            n not in by_name or by_name[n].expires_at <= now)]
        for name in mine[:target] + free:
            if len(keep) >= target:
                break
            lease = await store.acquire_lease(name, self.node_id, ttl, now)  # or extend
            if lease is not None:
                keep.append(lease)
                if name not in mine:
                    log.info("job lease %s taken by %s (token %d)", name, self.node_id,
                             lease.token)
        self.held = {k: v for k, v in self.held.items() if not k.startswith(job.name + "/")}
        self.held.update((lease.job, lease) for lease in keep)
        return keep

    async def run(self, job: LeasedJob) -> None:
        try:
            leases = await self.balance(job, self.ctx.clock())
        except StoreError as exc:
            log.warning("job %s: leases unavailable (%s); retrying next run", job.name, exc)
            return
        if not leases:
            return
        # one run over every shard held (one scan of the store, not one per shard),
        # fenced by all of their leases
        indices = [int(x.job.rsplit("/", 1)[1]) for x in leases]
        shard = Shard(indices[0], job.shards, tuple(indices[1:]))
        fences = tuple(Fence(x.job, x.token) for x in leases)
        fenced = FencedStore(self.ctx.store, fences, shard)
        sub = dataclasses.replace(self.ctx, store=cast(Store, fenced))
        for x in leases:
            self.runs[x.job] += 1
            log.debug("job %s run by %s (token %d)", x.job, self.node_id, x.token)
        try:
            await job.fn(sub)
        except LeaseLost as exc:
            for x in leases:
                self.held.pop(x.job, None)
            log.info("job %s on %s stopped: %s", job.name, self.node_id, exc)

    async def release_all(self) -> None:
        """At a clean stop: the other nodes take the shards over at once, not after a TTL."""
        store = self.ctx.store
        for lease in [*self.held.values(), *([self._presence] if self._presence else [])]:
            try:
                await store.release_lease(lease)
            except StoreError:
                pass
        self.held.clear()
        self._presence = None
