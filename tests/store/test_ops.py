"""Operator summaries and schema versions (registry.port.ops) on both adapters."""

from __future__ import annotations

from registry.port import Batch, Store
from tests.store.support import der, msg, seed, ven


async def test_fleet_summary_counts_vens_ders_capacity_and_outbox(store: Store) -> None:
    a, b = ven("osb-a"), ven("osb-b")
    await seed(store, a, b, ders=[
        der(a.ven_id, "r1", device_class="dhwDevice", max_capacity=3000.0),
        der(a.ven_id, "r2", device_class="dhwDevice", max_capacity=2000.0),
        der(b.ven_id, "r1", device_class="pvSystem", max_capacity=8000.0),
    ])
    await store.commit(Batch(outbox=[msg(a.ven_id, 1), msg(b.ven_id, 2)]))
    summary = await store.fleet_summary()
    assert sum(summary.vens_by_liveness.values()) == 2
    assert sum(summary.ders_by_liveness.values()) == 3
    assert summary.capacity_by_class["dhwDevice"][:2] == [2, 5000.0]
    assert summary.capacity_by_class["pvSystem"][:2] == [1, 8000.0]
    assert summary.outbox_pending == 2
    assert summary.schema_version == await store.schema_version() >= 1


async def test_empty_store_summary(store: Store) -> None:
    summary = await store.fleet_summary()
    assert summary.vens_by_liveness == {} and summary.ders_by_liveness == {}
    assert summary.outbox_pending == 0
