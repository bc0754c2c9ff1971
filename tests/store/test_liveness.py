"""Liveness: sweeps and contacts.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from registry.models import DerStatus
from registry.port import Store
from tests.store.support import T0, Opener, der, seed, ven


async def test_liveness_transitions_once_even_with_two_sweepers(open_store: Opener) -> None:
    one, two = await open_store(), await open_store()
    v = ven(poll_freq_s=10.0)
    d_on = der(v.ven_id, "on")
    d_off = der(v.ven_id, "off", status=DerStatus(online=False))
    await seed(one, v, ders=[d_on, d_off])
    changes = await asyncio.gather(one.mark_online(v.ven_id, T0), two.mark_online(v.ven_id, T0))
    assert [c.new.value for c in changes if c] == ["online"]
    await one.touch({v.ven_id: T0 + timedelta(seconds=5)})

    async def sweep(at: datetime) -> list[str]:
        both = await asyncio.gather(one.sweep_liveness(at, 3, 10), two.sweep_liveness(at, 3, 10))
        return [c.new.value for c in both[0] + both[1]]

    assert await sweep(T0 + timedelta(seconds=34)) == []  # 29 s silent: still online
    assert await sweep(T0 + timedelta(seconds=36)) == ["stale"]
    assert await sweep(T0 + timedelta(seconds=40)) == []
    assert await sweep(T0 + timedelta(seconds=106)) == ["offline"]
    got = await two.get_ven(v.ven_id)
    assert got is not None and got.offline_since == T0 + timedelta(seconds=106)
    back = await asyncio.gather(*[s.mark_online(v.ven_id, T0 + timedelta(seconds=200))
                                  for s in (one, two, one, two)])
    assert [(c.old.value, c.new.value, c.ders) for c in back if c] == [("offline", "online", 2)]
    ders = {d.resource_id: d.liveness.value for d in await one.ders_of_ven(v.ven_id)}
    assert ders == {"on": "online", "off": "offline"}  # its own report says offline
    moves = [(e.data["from"], e.data["to"]) for e in await two.read_log()
             if e.kind == "ven.liveness"]
    assert moves == [("offline", "online"), ("online", "stale"), ("stale", "offline"),
                     ("offline", "online")]


async def test_touch_only_moves_last_seen_forward(store: Store) -> None:
    v = ven()
    await seed(store, v)
    await store.touch({v.ven_id: T0 + timedelta(seconds=9)})
    await store.touch({v.ven_id: T0, "unknown": T0})
    got = await store.get_ven(v.ven_id)
    assert got is not None and got.last_seen == T0 + timedelta(seconds=9)
    assert got.liveness == "offline"  # touch never changes state
