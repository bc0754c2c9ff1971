"""Keep-alives with a controllable clock: stale, offline, back online, logged once."""

from __future__ import annotations

import os

import pytest

from registry.sqlite import SqliteStore
from tests.conftest import FakeClock, make_vtn
from tests.oadr import call, metadata, register, status_payload, update
from vtn.app import Vtn
from vtn.codec import messages as m
from vtn.liveness import flush_contacts, sweep


async def osb(vtn: Vtn) -> str:
    reg = await register(vtn)
    ven_id = reg.ven_id or ""
    await call(vtn, "EiReport", metadata(ven_id, {"hp": "Heat_Pump", "pv": "PV"}))
    return ven_id


async def liveness(vtn: Vtn, ven_id: str) -> tuple[str, list[str]]:
    ven = await vtn.store.get_ven(ven_id)
    assert ven is not None
    return ven.liveness.value, [d.liveness.value for d in await vtn.store.ders_of_ven(ven_id)]


async def test_silent_ven_goes_stale_then_offline_and_returns(vtn: Vtn, clock: FakeClock) -> None:
    cfg = vtn.config.liveness  # poll period 10 s: stale after 30 s, offline after 100 s
    ven_id = await osb(vtn)
    clock.advance(10 * cfg.stale_after_polls - 1)
    assert await sweep(vtn.ctx) == []
    clock.advance(2)
    changes = await sweep(vtn.ctx)
    assert [(c.ven_id, c.new.value, c.ders) for c in changes] == [(ven_id, "stale", 2)]
    assert await liveness(vtn, ven_id) == ("stale", ["stale", "stale"])
    assert await sweep(vtn.ctx) == []  # nothing twice
    clock.advance(10 * cfg.offline_after_polls)
    assert [c.new.value for c in await sweep(vtn.ctx)] == ["offline"]
    ven = await vtn.store.get_ven(ven_id)
    assert ven is not None and ven.offline_since == clock.now
    # any message is contact: it comes back online at once
    reply = await call(vtn, "OadrPoll", m.Poll(ven_id=ven_id))
    assert isinstance(reply, m.RegisterReport)
    assert await liveness(vtn, ven_id) == ("online", ["online", "online"])
    moves = [
        (e.data["from"], e.data["to"])
        for e in await vtn.store.read_log()
        if e.kind == "ven.liveness"
    ]
    assert moves == [
        ("offline", "online"),
        ("online", "stale"),
        ("stale", "offline"),
        ("offline", "online"),
    ]


@pytest.mark.skipif(
    os.environ.get("TEST_STORE", "sqlite") == "mongo",
    reason="counts writes with sqlite3's total_changes; MongoDB has no such per-connection "
    "counter (the coalescing is in the engine, not the store)",
)
async def test_polling_ven_stays_online_without_a_write_per_poll(
    vtn: Vtn, clock: FakeClock
) -> None:
    ven_id = await osb(vtn)
    store = vtn.store
    assert isinstance(store, SqliteStore)
    await call(vtn, "OadrPoll", m.Poll(ven_id=ven_id))  # drain the VTN's register report
    writes = store.db.total_changes
    for _ in range(20):
        clock.advance(10)
        reply = await call(vtn, "OadrPoll", m.Poll(ven_id=ven_id))
        assert isinstance(reply, m.Response)
    assert store.db.total_changes == writes  # polls are coalesced in memory
    assert await flush_contacts(vtn.ctx) == 1
    assert store.db.total_changes == writes + 1  # one write for twenty polls
    assert await sweep(vtn.ctx) == []
    assert (await liveness(vtn, ven_id))[0] == "online"


async def test_der_offline_by_its_own_status_stays_offline_when_ven_returns(
    vtn: Vtn, clock: FakeClock
) -> None:
    ven_id = await osb(vtn)
    rr = next(
        r
        for r in await vtn.store.report_requests_of_ven(ven_id)
        if r.report_specifier_id == "status-spec"
    )
    await call(
        vtn,
        "EiReport",
        update(
            ven_id, rr.report_request_id, "status-spec", [status_payload("pv-status", online=False)]
        ),
    )
    clock.advance(1000)
    await sweep(vtn.ctx)
    await call(vtn, "OadrPoll", m.Poll(ven_id=ven_id))
    ders = {d.resource_id: d.liveness.value for d in await vtn.store.ders_of_ven(ven_id)}
    assert ders == {"hp": "online", "pv": "offline"}


async def test_two_processes_sweeping_one_store_log_each_transition_once(
    vtn: Vtn, clock: FakeClock
) -> None:
    ven_id = await osb(vtn)
    other = make_vtn(vtn.config, clock)  # a second VTN process on the same store file
    await other.start()
    try:
        clock.advance(35)
        import asyncio

        results = await asyncio.gather(sweep(vtn.ctx), sweep(other.ctx))
        assert sorted(len(r) for r in results) == [0, 1]
        stale = [
            e
            for e in await vtn.store.read_log()
            if e.kind == "ven.liveness" and e.data["to"] == "stale"
        ]
        assert len(stale) == 1 and stale[0].ven_id == ven_id
    finally:
        await other.stop()
