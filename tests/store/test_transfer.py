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
