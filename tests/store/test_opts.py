"""Opt schedules: upserts, scoped covering windows, and discovery's ``available_at``.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

from datetime import timedelta

from registry.events import OptType
from registry.port import SERVICE, Batch, Store
from tests.store.event_support import ACC2, AGG1, AGG2, schedule, world
from tests.store.support import T0, Opener, ids_of

H = 3600.0


async def test_opts_upsert_replace_and_cancel(store: Store) -> None:
    (v1, _), ders, _ = await world(store)
    a = schedule(v1, "o1", (T0, H), devices=ders[:2])
    b = schedule(v1, "o0", (T0, H), opt_type=OptType.IN)
    await store.commit(Batch(opts=[a, b]))
    assert await store.get_opt(v1.ven_id, "o1") == a
    assert [o.opt_id for o in await store.opts_of_ven(v1.ven_id)] == ["o0", "o1"]
    assert await store.get_opt("other", "o1") is None
    moved = schedule(v1, "o1", (T0 + timedelta(hours=5), H))  # re-sent: replaced
    await store.commit(Batch(opts=[moved]))
    assert await store.get_opt(v1.ven_id, "o1") == moved
    assert [o.opt_id for o in await store.opts_covering(T0, SERVICE)] == ["o0"]
    cancelled = b.model_copy(update={"cancelled_at": T0})
    await store.commit(Batch(opts=[cancelled]))
    assert await store.get_opt(v1.ven_id, "o0") == cancelled
    assert await store.opts_covering(T0, SERVICE) == []  # a cancelled one covers nothing


async def test_opts_covering_windows_scope_and_type(store: Store) -> None:
    (v1, v2), _, _ = await world(store)
    await store.commit(Batch(opts=[
        schedule(v1, "out", (T0, H), (T0 + timedelta(hours=3), H)),
        schedule(v1, "in", (T0, 2 * H), opt_type=OptType.IN),
        schedule(v2, "out2", (T0 - timedelta(hours=1), 2 * H)),
    ]))

    async def covering(at: object, scope: object = SERVICE, t: OptType | None = None
                       ) -> list[str]:
        got = await store.opts_covering(at, scope, t)  # type: ignore[arg-type]
        assert [(o.ven_id, o.opt_id) for o in got] == sorted((o.ven_id, o.opt_id) for o in got)
        return sorted(o.opt_id for o in got)

    assert await covering(T0) == ["in", "out", "out2"]
    assert await covering(T0, t=OptType.OUT) == ["out", "out2"]
    assert await covering(T0 + timedelta(hours=1)) == ["in"]  # end is exclusive
    assert await covering(T0 + timedelta(hours=3)) == ["out"]  # start is inclusive
    assert await covering(T0 - timedelta(seconds=1)) == ["out2"]
    assert await covering(T0, AGG1) == ["in", "out"]
    assert await covering(T0, AGG2) == ["out2"] and await covering(T0, ACC2) == ["out2"]


async def test_available_at_excludes_opted_out_ders(store: Store) -> None:
    (v1, v2), ders, _ = await world(store)
    # fleet: d02 has dr_availability false, d04 availability false
    assert await ids_of(store, available_at=T0.isoformat()) == [
        "d00", "d01", "d03", "d05", "d06", "d07", "d08"]
    by_id = {d.device_id: d for d in ders}
    await store.commit(Batch(opts=[
        schedule(v1, "some", (T0, H), devices=[by_id["d01"], by_id["d03"]]),
        schedule(v2, "all", (T0 + timedelta(hours=2), H)),
        schedule(v2, "in", (T0, H), opt_type=OptType.IN),
        schedule(v1, "gone", (T0, H), cancelled_at=T0),
    ]))
    assert await ids_of(store, available_at=T0.isoformat()) == [
        "d00", "d05", "d06", "d07", "d08"]
    later = (T0 + timedelta(hours=2)).isoformat()
    assert await ids_of(store, available_at=later) == ["d00", "d01", "d03"]
    assert await ids_of(store, AGG2, available_at=later) == []
    assert await ids_of(store, AGG1, available_at=T0.isoformat(), sort="-device_id") == [
        "d00"]
    page = await store.find_ders(
        __import__("tests.store.support", fromlist=["dq"]).dq(
            available_at=T0.isoformat(), total=True, limit=2), SERVICE)
    assert page.total == 5 and len(page.items) == 2
    # an end instant is not covered; a naive time counts as UTC
    assert "d01" in await ids_of(store, available_at="2026-11-23T13:00:00")


async def test_opts_survive_close_and_reopen(open_store: Opener) -> None:
    store = await open_store()
    (v1, _), ders, _ = await world(store)
    await store.commit(Batch(opts=[schedule(v1, "o1", (T0, H), devices=ders[:1])]))
    before = await store.opts_of_ven(v1.ven_id)
    await store.close()
    again = await open_store()
    assert await again.opts_of_ven(v1.ven_id) == before
    assert [o.opt_id for o in await again.opts_covering(T0, SERVICE)] == ["o1"]
