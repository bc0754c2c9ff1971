"""Export: iter_all streams every kind.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

import uuid

from registry.models import LogEntry
from registry.port import Batch, Store
from tests.store.support import T0, der, msg, ven


async def test_iter_all_streams_every_kind(store: Store) -> None:
    v = ven()
    ders = [der(v.ven_id, f"r{i}", device_id=str(uuid.uuid4())) for i in range(3)]
    await store.commit(Batch(vens=[v], ders=ders, outbox=[msg(v.ven_id, 1)],
                             log=[LogEntry(kind="k", at=T0)]))
    iter_all = store.iter_all  # type: ignore[attr-defined]
    got = {kind: [r async for r in iter_all(kind)]
           for kind in ("ven", "der", "report_spec", "report_request", "outbox", "log")}
    assert got["ven"] == [await store.get_ven(v.ven_id)]
    assert [d.resource_id for d in got["der"]] == ["r0", "r1", "r2"]
    assert [m.body for m in got["outbox"]] == ["<m1/>"]
    assert [e.seq for e in got["log"]] == [1]


async def test_iter_all_streams_events_deliveries_and_opts(store: Store) -> None:
    from registry.events import EventTargets, OptType
    from registry.port import SERVICE, OptAnswer
    from tests.store.event_support import create, event, schedule, world

    (v1, v2), _, _ = await world(store)
    await create(store, event(targets=EventTargets(ven_ids=[v1.ven_id, v2.ven_id])), SERVICE)
    await store.commit(Batch(
        opt_answers=[OptAnswer("ev-1", v1.ven_id, OptType.IN, 0, T0, ["r0"])],
        opts=[schedule(v2, "o2", (T0, 60.0)), schedule(v1, "o1", (T0, 60.0))]))
    iter_all = store.iter_all  # type: ignore[attr-defined]
    got = {kind: [r async for r in iter_all(kind)]
           for kind in ("event", "event_delivery", "opt_schedule")}
    assert got["event"] == [await store.get_event("ev-1", SERVICE)]
    assert got["event_delivery"] == await store.deliveries_of_event("ev-1", SERVICE)
    assert [(o.ven_id, o.opt_id) for o in got["opt_schedule"]] == sorted(
        [(v1.ven_id, "o1"), (v2.ven_id, "o2")])
