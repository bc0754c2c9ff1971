"""vtn.leased_jobs over a real store: shards spread over the live nodes, a silent node's
shards are taken over after the TTL, and a job whose lease was taken commits nothing.

Two or three JobRunners on one database stand for VTN nodes; their runs are driven by
the test with a settable clock (no scheduler, no sleeps). TEST_STORE=mongo runs them on
nx-27017.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from registry.models import Ven
from registry.port import Batch, Fence, LeaseLost, Store
from tests.store.support import T0
from vtn.app import make_store
from vtn.config import Config, JobsConfig
from vtn.leased_jobs import FencedStore, JobRunner, LeasedJob
from vtn.services.base import Context


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def nodes(config: Config) -> AsyncIterator[Callable[[str], JobRunner]]:
    clock = Clock()
    stores: list[Store] = []

    def node(name: str) -> JobRunner:
        store = make_store(config)
        stores.append(store)
        ctx = Context(store=store, config=config, clock=clock)
        return JobRunner(ctx, AsyncIOScheduler(), JobsConfig(node_id=name, lease_ttl_s=3))

    node.clock = clock  # type: ignore[attr-defined]
    yield node
    for s in stores:
        await s.close()


def recorder(ran: list[tuple[str, int]]) -> Callable[[Context], object]:
    async def job(ctx: Context) -> None:
        assert isinstance(ctx.store, FencedStore)
        for i in ctx.store.shard.indices:
            ran.append((ctx.store.shard, i))

    return job


async def test_shards_spread_over_nodes_and_a_dead_nodes_are_taken_over(
    nodes: Callable[[str], JobRunner],
) -> None:
    clock = nodes.clock  # type: ignore[attr-defined]
    a, b, c = nodes("a"), nodes("b"), nodes("c")
    for n in (a, b, c):
        await n.ctx.store.open()
    ran: list[tuple[str, int]] = []
    job = LeasedJob("sweep", recorder(ran), 1.0, 6)  # type: ignore[arg-type]
    await a.run(job)
    assert sorted(i for _, i in ran) == [0, 1, 2, 3, 4, 5]  # alone: all of it
    for n in (b, c):
        await n.heartbeat()
    for _ in range(2):  # a gives up its extras, b and c take them
        clock.advance(1)
        for n in (a, b, c):
            ran.clear()
            await n.run(job)
    held = {n.node_id: sorted(k for k in n.held) for n in (a, b, c)}
    assert all(len(v) == 2 for v in held.values()), held
    assert len({k for v in held.values() for k in v}) == 6  # each shard on one node
    # c is killed: after the TTL its presence and its shards expire; a and b take them
    for _ in range(4):
        clock.advance(1)
        for n in (a, b):
            await n.heartbeat()
            await n.run(job)
    assert sorted([*a.held, *b.held]) == [f"sweep/{i}" for i in range(6)]
    assert len(a.held) == len(b.held) == 3


async def test_a_node_that_lost_its_lease_commits_nothing(
    nodes: Callable[[str], JobRunner],
) -> None:
    clock = nodes.clock  # type: ignore[attr-defined]
    a, b = nodes("a"), nodes("b")
    for n in (a, b):
        await n.ctx.store.open()
    written: list[str] = []

    async def job(ctx: Context) -> None:
        v = Ven(ven_name=f"from-{len(written)}")
        written.append(v.ven_name)
        clock.advance(10)  # stalls past the TTL, and meanwhile b takes over
        await b.run(LeasedJob("one", noop, 1.0, 1))
        await ctx.store.commit(Batch(vens=[v]))

    async def noop(ctx: Context) -> None:
        pass

    await a.run(LeasedJob("one", job, 1.0, 1))  # LeaseLost is caught: the lease is dropped
    assert written == ["from-0"] and a.held == {} and list(b.held) == ["one/0"]
    assert await a.ctx.store.find_ven_by_name("from-0") is None
    with pytest.raises(LeaseLost):  # a's old token, by hand: refused as well
        await a.ctx.store.commit(Batch(vens=[Ven(ven_name="x")], fence=Fence("one/0", 1)))
    assert b.held["one/0"].token == 2
