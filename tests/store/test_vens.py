"""VENs: upserts, lookups, scoped lists, the poll state.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

from registry.discovery import LogQuery
from registry.models import LogEntry, Ven
from registry.port import SERVICE, Batch, Scope, Store
from tests.store.support import T0, fleet, msg, seed, ven


async def test_ven_upsert_get_find_and_scoped_list(store: Store) -> None:
    a = ven("osb-a", aggregator_id="agg1", account_id="acc1", fingerprint="fp:a")
    b = ven("osb-b", aggregator_id="agg2", account_id="acc2")
    await seed(store, b, a)
    assert await store.get_ven(a.ven_id) == a
    assert await store.find_ven_by_name("osb-b") == b
    assert await store.find_ven_by_fingerprint("fp:a") == a
    assert await store.get_ven("nope") is None
    assert [v.ven_name for v in await store.list_vens(SERVICE)] == ["osb-a", "osb-b"]
    assert await store.list_vens(Scope("aggregator", aggregator_id="agg2")) == [b]
    assert await store.list_vens(Scope("prosumer", account_id="acc1")) == [a]
    assert await store.list_vens(Scope("aggregator")) == []  # incomplete scope: nothing
    renamed = a.model_copy(update={"transport_address": "http://osb-a.local"})
    await seed(store, renamed)
    got = await store.get_ven(a.ven_id)
    assert got is not None and got.transport_address == "http://osb-a.local"


async def test_ven_upsert_does_not_overwrite_liveness(store: Store) -> None:
    v = ven()
    await seed(store, v)
    await store.mark_online(v.ven_id, T0)
    await seed(store, v.model_copy(update={"profile_name": "2.0b"}))  # stale copy: offline
    got = await store.get_ven(v.ven_id)
    assert got is not None and got.liveness == "online" and got.last_seen == T0
    assert got.profile_name == "2.0b"


async def test_poll_state_tells_registration_binding_liveness_and_pending(store: Store) -> None:
    assert await store.poll_state("nobody") is None
    v = ven("osb-poll", fingerprint="ab:cd")
    w = Ven(ven_name="osb-unreg")
    await store.commit(Batch(vens=[v, w], outbox=[msg(v.ven_id, 1)]))
    state = await store.poll_state(v.ven_id)
    assert state is not None and state.registered and state.fingerprint == "ab:cd"
    assert state.liveness == "offline" and state.pending
    unreg = await store.poll_state(w.ven_id)
    assert unreg is not None and not unreg.registered
    await store.mark_online(v.ven_id, T0)
    assert await store.claim_next(v.ven_id) is not None
    state = await store.poll_state(v.ven_id)
    assert state is not None and state.liveness == "online"
    if type(store).__name__ == "SqliteStore":  # Mongo answers "maybe"; claim_next looks
        assert not state.pending


async def test_find_ven_and_find_log_in_scope(store: Store) -> None:
    (v1, v2), ders = fleet()
    entries = [
        LogEntry(kind="ven.registered", at=T0, ven_id=v1.ven_id, aggregator_id="agg1",
                 account_id="acc1"),
        LogEntry(kind="der.changed", at=T0, ven_id=v2.ven_id, device_id="d05",
                 aggregator_id="agg2", account_id="acc2"),
        LogEntry(kind="der.changed", at=T0, ven_id=v1.ven_id, device_id="d00",
                 aggregator_id="agg1", account_id="acc1"),
        LogEntry(kind="vtn.started", at=T0),
    ]
    await store.commit(Batch(vens=[v1, v2], ders=ders, log=entries))
    agg1 = Scope("aggregator", aggregator_id="agg1")
    assert await store.find_ven(v1.ven_id, agg1) == await store.get_ven(v1.ven_id)
    assert await store.find_ven(v2.ven_id, agg1) is None
    assert await store.find_ven(v2.ven_id, Scope("prosumer", account_id="acc2")) is not None
    assert await store.find_ven("nope", SERVICE) is None

    async def seqs(scope: Scope = SERVICE, **kw: object) -> list[int]:
        return [e.seq or 0 for e in await store.find_log(LogQuery.model_validate(kw), scope)]

    assert await seqs() == [1, 2, 3, 4]
    assert await seqs(agg1) == [1, 3]
    assert await seqs(Scope("prosumer", account_id="acc2")) == [2]
    assert await seqs(Scope("prosumer")) == []
    assert await seqs(kind="der.changed") == [2, 3]
    assert await seqs(kind="der.changed,vtn.started", after=2) == [3, 4]
    assert await seqs(ven_id=v1.ven_id, limit=1) == [1]
    assert await seqs(device_id="d05") == [2]
    assert await seqs(agg1, device_id="d05") == []
