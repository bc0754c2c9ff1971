"""List filters of any length work on every store (issue #13, finding 8).

The API bounds lists at registry.limits.MAX_LIST_ITEMS, but the adapters must not
depend on it: a query built past validation (a view stored before the bound) with
300,000 venIDs still answers, on SQLite without "too many SQL variables".
"""

from __future__ import annotations

from registry.discovery import DiscoveryQuery, LogQuery
from registry.limits import MAX_LIST_ITEMS
from registry.models import LogEntry
from registry.port import SERVICE, Batch, Scope, Store
from tests.store.support import T0, der, seed, ven

MANY = [f"ven-{i}" for i in range(300_000)]


async def test_ven_id_lists_beyond_any_variable_limit(store: Store) -> None:
    a, b = ven("osb-a", aggregator_id="A1"), ven("osb-b", aggregator_id="A1")
    await seed(store, a, b, ders=[der(a.ven_id, "r1", aggregator_id="A1"),
                                  der(b.ven_id, "r2", aggregator_id="A1")])
    sizes = [3, MAX_LIST_ITEMS]  # inlined, at the bound
    if type(store).__name__ == "SqliteStore":  # far beyond it (nx-27017, the test MongoDB,
        sizes.append(len(MANY))  # is SQL inside and has the variable limit itself)
    for n in sizes:
        ids = [*MANY[: n - 1], a.ven_id]
        query = DiscoveryQuery.model_construct(
            **{**DiscoveryQuery().__dict__, "ven_id": ids, "total": True})
        briefs = await store.der_briefs(query, Scope("aggregator", aggregator_id="A1"))
        assert [d.ven_id for d in briefs] == [a.ven_id]
        page = await store.find_ders(query, SERVICE)
        assert [h.der.ven_id for h in page.items] == [a.ven_id] and page.total == 1


async def test_log_kind_lists_beyond_any_variable_limit(store: Store) -> None:
    await store.commit(Batch(log=[LogEntry(kind="der.changed", at=T0)]))
    n = 300_000 if type(store).__name__ == "SqliteStore" else MAX_LIST_ITEMS
    kinds = [f"k.{i}" for i in range(n)] + ["der.changed"]
    query = LogQuery.model_construct(**{**LogQuery().__dict__, "kind": kinds})
    assert [e.kind for e in await store.find_log(query, SERVICE)] == ["der.changed"]
