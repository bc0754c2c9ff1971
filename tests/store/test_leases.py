"""Job leases (registry.port.leases): one holder at a time, expiry, fencing, shards.

Each test runs against both backends (the ``open_store`` fixture of conftest.py); two
store instances on one database stand for two VTN nodes.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from registry.models import Liveness
from registry.port import Batch, Fence, LeaseLost, Shard, shard_of
from tests.store.support import T0, Opener, seed, ven


async def test_one_holder_at_a_time_and_take_over_after_expiry(open_store: Opener) -> None:
    a, b = await open_store(), await open_store()
    got = await asyncio.gather(a.acquire_lease("job", "node-a", 10, T0),
                               b.acquire_lease("job", "node-b", 10, T0))
    winners = [lease for lease in got if lease is not None]
    assert len(winners) == 1 and winners[0].token == 1
    first = winners[0]
    other = "node-b" if first.holder == "node-a" else "node-a"
    assert await b.acquire_lease("job", other, 10, T0 + timedelta(seconds=9)) is None
    # the holder extends it (same token) ...
    again = await a.acquire_lease("job", first.holder, 10, T0 + timedelta(seconds=5))
    assert again is not None and again.token == 1
    assert again.expires_at == T0 + timedelta(seconds=15)
    assert await b.acquire_lease("job", other, 10, T0 + timedelta(seconds=14)) is None
    # ... and once it has expired another node takes it with a higher token
    taken = await b.acquire_lease("job", other, 10, T0 + timedelta(seconds=15))
    assert taken is not None and taken.holder == other and taken.token == 2
    assert await a.renew_lease(again, 10, T0 + timedelta(seconds=16)) is None
    renewed = await b.renew_lease(taken, 30, T0 + timedelta(seconds=16))
    assert renewed is not None and renewed.expires_at == T0 + timedelta(seconds=46)
    listed = await a.list_leases("jo")
    assert [(x.job, x.holder, x.token) for x in listed] == [("job", other, 2)]
    assert await a.list_leases("other") == []


async def test_release_frees_the_lease_and_the_token_still_grows(open_store: Opener) -> None:
    a = await open_store()
    lease = await a.acquire_lease("sweep/0", "n1", 60, T0)
    assert lease is not None
    await a.release_lease(lease)
    nxt = await a.acquire_lease("sweep/0", "n2", 60, T0 + timedelta(seconds=1))
    assert nxt is not None and nxt.token == lease.token + 1
    await a.release_lease(lease)  # a stale release changes nothing
    assert await a.acquire_lease("sweep/0", "n3", 60, T0 + timedelta(seconds=2)) is None


async def test_a_commit_under_a_lost_lease_writes_nothing(open_store: Opener) -> None:
    a, b = await open_store(), await open_store()
    old = await a.acquire_lease("views.tick", "n1", 5, T0)
    assert old is not None
    v = ven("fenced")
    await a.commit(Batch(vens=[v], fence=Fence(old.job, old.token)))  # current: committed
    assert await b.get_ven(v.ven_id) is not None
    new = await b.acquire_lease("views.tick", "n2", 5, T0 + timedelta(seconds=6))
    assert new is not None and new.token == old.token + 1
    late = ven("late")
    with pytest.raises(LeaseLost):
        await a.commit(Batch(vens=[late], fence=Fence(old.job, old.token)))
    assert await b.get_ven(late.ven_id) is None  # nothing half-written
    with pytest.raises(LeaseLost):  # a lease that never existed fences too
        await a.commit(Batch(vens=[late], fence=Fence("nobody", 1)))
    await b.commit(Batch(vens=[late], fence=Fence(new.job, new.token)))
    assert await a.get_ven(late.ven_id) is not None


async def test_sweep_by_shard_covers_every_ven_once(open_store: Opener) -> None:
    one, two = await open_store(), await open_store()
    fleet = [ven(f"osb-{i}", poll_freq_s=10.0) for i in range(24)]
    await seed(one, *fleet)
    for v in fleet:
        await one.mark_online(v.ven_id, T0)
    later = T0 + timedelta(seconds=200)
    swept: list[set[str]] = []
    for i in range(3):
        store = one if i % 2 else two
        changes = await store.sweep_liveness(later, 3, 10, shard=Shard(i, 3))
        got = {c.ven_id for c in changes}
        assert got == {v.ven_id for v in fleet if shard_of(v.ven_id, 3) == i}
        swept.append(got)
    assert set().union(*swept) == {v.ven_id for v in fleet}
    assert sum(map(len, swept)) == len(fleet)
    assert all(swept)  # UUIDv7 ids spread over the shards


async def test_sweep_under_a_lost_lease_stops(open_store: Opener) -> None:
    a, b = await open_store(), await open_store()
    v = ven("silent", poll_freq_s=10.0)
    await seed(a, v)
    await a.mark_online(v.ven_id, T0)
    old = await a.acquire_lease("liveness.sweep/0", "n1", 5, T0)
    assert old is not None
    assert await b.acquire_lease("liveness.sweep/0", "n2", 5, T0 + timedelta(seconds=6))
    with pytest.raises(LeaseLost):
        await a.sweep_liveness(T0 + timedelta(seconds=200), 3, 10,
                               fence=Fence(old.job, old.token))
    got = await b.get_ven(v.ven_id)
    assert got is not None and got.liveness == Liveness.ONLINE  # not swept by the loser


def test_shard_of_is_total_and_stable() -> None:
    assert shard_of("anything", 1) == 0
    assert shard_of("", 4) == 0
    assert shard_of("ven-\u00e9", 4) == 0  # non-ASCII last character: shard 0
    assert shard_of("ven-a", 4) == ord("a") % 4  # one hex digit at the end: code point
    assert shard_of("...ff", 7) == 255 % 7 and shard_of("..FF", 7) == 255 % 7  # two hex
    assert Shard(255 % 7, 7).covers("0x-ff")
