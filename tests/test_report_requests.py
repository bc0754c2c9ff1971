"""Issue #21: report requests every VEN understands, over real HTTP with a fake clock.

Two independent peers (tests/report_peers.py): one acts only on oadrCreateReport from
polls, one reads a missing reportInterval as one-shot. Both end up sending periodic
telemetry; overdue and silent show up and clear; long requests are renewed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest

from registry.models import ReportRequestState
from tests.conftest import FakeClock, make_vtn
from tests.report_peers import PeerVen
from vtn.app import Vtn
from vtn.codec import messages as m
from vtn.config import Config
from vtn.services import history, report_watch
from vtn.services.admin import provision_ven
from vtn.transports.site import HttpSite

RESOURCES: dict[str, str | None] = {"boiler": "Water_Heater", "hp": "Heat_Pump"}


@dataclass
class Net:
    vtn: Vtn
    clock: FakeClock
    url: str
    session: aiohttp.ClientSession

    async def peer(self, name: str, mode: str) -> PeerVen:
        await provision_ven(self.vtn.ctx, name=name, aggregator_id="agg-1", account_id="acc-1")
        return PeerVen(self.url, self.session, name, mode)

    async def states(self, ven_id: str) -> dict[str, str]:
        return {r.report_request_id: r.state.value
                for r in await self.vtn.store.report_requests_of_ven(ven_id)}

    async def kinds(self, ven_id: str) -> list[str]:
        return [e.kind for e in await self.vtn.store.read_log(limit=1000, ven_id=ven_id)
                if e.kind.startswith("report.")]

    async def tick(self, seconds: float) -> int:
        self.clock.advance(seconds)
        return await report_watch.check(self.vtn.ctx)


@pytest.fixture
async def net(config: Config, clock: FakeClock) -> AsyncIterator[Net]:
    vtn = make_vtn(config, clock)
    site = HttpSite(vtn, "127.0.0.1", config.http.port)
    await site.start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{config.http.port}/OpenADR2/Simple/2.0b"
            yield Net(vtn, clock, url, session)
    finally:
        await site.stop()


async def test_every_request_carries_a_report_interval(net: Net) -> None:
    ven = await net.peer("ven-a", "one_shot")
    registered = await ven.register(RESOURCES)
    assert len(registered.report_requests) == 2
    for rr in registered.report_requests:
        assert rr.interval_start == net.clock.now
        assert rr.interval_duration is not None
        assert rr.interval_duration.total_seconds() == net.vtn.config.reports.horizon_s
    # the one-shot reader sees an interval, so it reports periodically
    assert set(ven.periodic) == {r.report_request_id for r in registered.report_requests}


async def test_poll_only_ven_gets_the_same_request_as_create_report(net: Net) -> None:
    cfg = net.vtn.config.reports
    ven = await net.peer("ven-b", "poll_only")
    registered = await ven.register(RESOURCES)
    ids = {r.report_request_id for r in registered.report_requests}
    assert await ven.poll() == ["oadrRegisterReport"]
    assert set((await net.states(ven.ven_id)).values()) == {"pending"}
    assert await net.tick(cfg.ack_timeout_s - 1) == 0  # not yet
    assert await net.tick(2) == 2  # two requests resent
    assert await ven.poll() == ["oadrCreateReport"] * 2  # one per request
    assert set(ven.seen_requests) == ids  # the SAME reportRequestIDs
    recs = await net.vtn.store.report_requests_of_ven(ven.ven_id)
    assert {r.state for r in recs} == {ReportRequestState.ACTIVE}
    assert all(r.attempts == 2 and r.acknowledged_at == net.clock.now for r in recs)
    # periodic telemetry lands in the registry
    for i in range(3):
        net.clock.advance(60)
        assert await ven.report(net.clock.now, 1000.0 + i) == 2
    boiler = next(d for d in await net.vtn.store.ders_of_ven(ven.ven_id)
                  if d.resource_id == "boiler")
    assert boiler.last_values["boiler-power"].value == pytest.approx(1.002)
    assert boiler.last_report_at == net.clock.now
    # healthy requests do not wake the watch job until they would be silent
    soon = net.clock.now + timedelta(seconds=60 * cfg.silent_after_periods - 1)
    assert await net.vtn.store.due_report_requests(soon) == []
    # acknowledged: never sent again
    await net.tick(cfg.ack_timeout_s * 10)
    await ven.report(net.clock.now, 1000.0)
    assert await ven.poll() == []
    assert len(ven.seen_requests) == 2
    kinds = await net.kinds(ven.ven_id)
    assert kinds.count("report.requested") == 2 and kinds.count("report.acknowledged") == 2


async def test_empty_update_report_is_answered_and_is_not_data(net: Net) -> None:
    ven = await net.peer("ven-c", "poll_only")
    await ven.register(RESOURCES)
    reply = await ven.send("EiReport", m.UpdateReport("u-1", [], ven.ven_id))
    assert isinstance(reply, m.UpdatedReport) and reply.response.code == 200
    assert set((await net.states(ven.ven_id)).values()) == {"pending"}
    assert all(d.last_report_at is None for d in await net.vtn.store.ders_of_ven(ven.ven_id))


async def test_unacknowledged_request_goes_overdue_then_clears(net: Net) -> None:
    cfg = net.vtn.config.reports
    ven = await net.peer("ven-d", "poll_only")
    await ven.register(RESOURCES)
    sends = 1
    wait = cfg.ack_timeout_s
    while sends < cfg.max_attempts:
        await net.tick(wait + 1)
        sends += 1
        got = await net.vtn.store.report_requests_of_ven(ven.ven_id)
        assert {r.attempts for r in got} == {sends}
        wait *= cfg.ack_backoff
    await net.tick(wait + 1)
    assert set((await net.states(ven.ven_id)).values()) == {"overdue"}
    assert (await net.kinds(ven.ven_id)).count("report.overdue") == 2
    await net.tick(3600)  # overdue: nothing more is sent
    assert {r.attempts for r in await net.vtn.store.report_requests_of_ven(ven.ven_id)} == {
        cfg.max_attempts}
    # the VEN finally takes the queued oadrCreateReports: acknowledged, active
    assert "oadrCreateReport" in await ven.poll()
    assert set((await net.states(ven.ven_id)).values()) == {"active"}


async def test_silent_request_shows_and_clears(net: Net) -> None:
    cfg = net.vtn.config.reports
    ven = await net.peer("ven-e", "one_shot")
    await ven.register(RESOURCES)
    await ven.poll()
    net.clock.advance(60)
    await ven.report(net.clock.now, 500.0)
    assert set((await net.states(ven.ven_id)).values()) == {"active"}
    await net.tick(60 * cfg.silent_after_periods - 5)
    assert set((await net.states(ven.ven_id)).values()) == {"active"}
    await net.tick(10)
    assert set((await net.states(ven.ven_id)).values()) == {"silent"}
    assert (await net.kinds(ven.ven_id)).count("report.silent") == 2
    net.clock.advance(1)
    await ven.report(net.clock.now, 500.0)
    assert set((await net.states(ven.ven_id)).values()) == {"active"}
    assert (await net.kinds(ven.ven_id)).count("report.resumed") == 2


async def test_open_ended_requests_are_renewed_and_the_old_ones_cancelled(net: Net) -> None:
    cfg = net.vtn.config.reports
    ven = await net.peer("ven-f", "poll_only")
    registered = await ven.register(RESOURCES)
    old = {r.report_request_id for r in registered.report_requests}
    await ven.poll()
    await net.tick(cfg.ack_timeout_s + 1)
    await ven.poll()  # the resent requests: acknowledged
    renew_in = cfg.horizon_s - cfg.renew_before_s - cfg.ack_timeout_s
    step = 900.0
    while renew_in > 0:  # keep reporting while time passes
        d = min(step, renew_in)
        renew_in -= d
        await net.tick(d)
        await ven.report(net.clock.now, 100.0)
    await net.tick(2)
    assert await ven.poll() == ["oadrCreateReport"] * 2
    new = set(ven.seen_requests) - old
    assert len(new) == 2
    states = await net.states(ven.ven_id)
    assert all(states[i] == "active" for i in new | old)
    await net.tick(cfg.ack_timeout_s + 1)
    assert await ven.poll() == ["oadrCancelReport"] * 2
    states = await net.states(ven.ven_id)
    assert {states[i] for i in old} == {"cancelled"} and {states[i] for i in new} == {"active"}
    assert set(ven.periodic) == new
    renewed = [r for r in await net.vtn.store.report_requests_of_ven(ven.ven_id)
               if r.report_request_id in new]
    assert all(r.interval_start == r.requested_at and r.replaces in old for r in renewed)
    kinds = await net.kinds(ven.ven_id)
    assert kinds.count("report.renewed") == 2 and kinds.count("report.replaced") == 2


async def test_reports_feed_the_telemetry_history(net: Net) -> None:
    ven = await net.peer("ven-g", "one_shot")
    await ven.register(RESOURCES)
    for w in (1000.0, 2000.0, 3000.0):
        net.clock.advance(60)
        await ven.report(net.clock.now, w)
    assert await history.flush(net.vtn.ctx) >= 1
    ders = {d.resource_id: d.device_id for d in await net.vtn.store.ders_of_ven(ven.ven_id)}
    start = net.clock.now.replace(minute=0)
    buckets = await net.vtn.store.telemetry_history([ders["boiler"]], start,
                                                    net.clock.now.replace(minute=59))
    assert sum(b.count for b in buckets) == 3
    assert sum(b.sum_w for b in buckets) == pytest.approx(6000.0)
