"""Everything written survives closing and reopening the store.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

from registry.models import LastValue, Location, LogEntry
from registry.port import Batch
from tests.store.support import T0, Opener, der, msg, request, snapshot, spec, ven


async def test_everything_survives_close_and_reopen(open_store: Opener) -> None:
    store = await open_store()
    v = ven(fingerprint="fp")
    d = der(v.ven_id, "hp", location=Location(lat=1.5, lon=2.5), max_capacity=1.0,
            last_values={"r1": LastValue(value=2.0, at=T0)})
    entries = await store.commit(Batch(
        vens=[v], ders=[d], report_specs=[spec(v.ven_id, "s1")],
        report_requests=[request(v.ven_id, "rr1")], outbox=[msg(v.ven_id, 1)],
        log=[LogEntry(kind="ven.registered", at=T0, ven_id=v.ven_id)]))
    await store.mark_online(v.ven_id, T0)
    before = await snapshot(store, v.ven_id, d.device_id)
    await store.close()
    again = await open_store()
    assert await snapshot(again, v.ven_id, d.device_id) == before
    assert entries[0].seq == 1 and await again.last_seq() == 2
