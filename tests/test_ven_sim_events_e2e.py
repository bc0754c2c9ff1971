"""ven-sim against the real VTN with a DR event, end to end over real HTTP.

A served VTN (its jobs running: status transitions, telemetry history), a small ven-sim
fleet driven by ven-sim's own scheduler in this process (so the test can read what each
simulated OSB decided), and the event dispatched, modified and cancelled through the
side API with a service token. Periods are one second, so it takes about 15 s.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from registry.api.auth import issue_token
from registry.port import SERVICE, DerQuery
from tests.conftest import Served, serve
from tests.test_ven_sim import eventually
from ven_sim.events import OPT_IN, OPT_OUT, household_busy, name_seed
from ven_sim.fleet import FleetOptions, Scheduler, build_osbs
from ven_sim.link import HttpLink
from ven_sim.osb import Osb
from ven_sim.scenario import load_scenario
from ven_sim.session import Env
from ven_sim.stats import Stats
from vtn.config import Config

VENS, DERS = 4, 4


@pytest.fixture
def fast(config: Config) -> Config:
    config.registration.open_enrollment = True
    config.registration.poll_freq_s = 1
    config.reports.usage_granularity_s = config.reports.status_granularity_s = 1
    config.reports.report_back_duration_s = 1
    config.reports.history_bucket_s = config.reports.history_flush_s = 1
    config.events.status_interval_s = 1
    return config


@asynccontextmanager
async def running(osbs: list[Osb], url: str) -> AsyncIterator[Stats]:
    """The OSBs under ven-sim's scheduler (as ``ven-sim run`` runs them), every VTN reply
    XSD-validated; yields the fleet's live stats."""
    stats = Stats(vens=len(osbs), ders_per_ven=DERS, scenario="steady", client="oadr")
    loop = asyncio.get_running_loop()
    env = Env(load_scenario("steady"), poll_s=1.0, report_s=1.0, rng=random.Random(3),
              now=loop.time)
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        scheduler = Scheduler(osbs, HttpLink(session, url, stats, validate=True), env, 8)
        task = asyncio.create_task(scheduler.run(stop, None, 0.5, None))
        try:
            yield stats
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


class Api:
    def __init__(self, config: Config, session: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{config.http.port}/api/v1"
        self.session = session
        self.auth = {"Authorization": f"Bearer {issue_token(config, 'service')}"}

    async def call(self, method: str, path: str, body: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, json=body,
                                        headers={**self.auth, **(headers or {})}) as r:
            return r.status, await r.json(content_type=None)

    async def get(self, path: str) -> Any:
        status, doc = await self.call("GET", path)
        assert status == 200, doc
        return doc


def pick_event_id(names: list[str]) -> str:
    """An event id for which ven-sim makes some households busy and others not (its
    busy-household draw is seeded by the OSB name and the eventID)."""
    for i in range(1000):
        busy = [household_busy(name_seed(n), f"e2e-{i}") for n in names]
        if any(busy) and not all(busy):
            return f"e2e-{i}"
    raise AssertionError("no mixed event id")


def simple(level: int, duration_s: float) -> list[dict[str, Any]]:
    return [{"signal_name": "SIMPLE", "signal_type": "level",
             "intervals": [{"duration_s": duration_s, "value": level}]}]


async def test_an_event_reaches_the_fleet_is_answered_and_sheds_load(fast: Config) -> None:
    osbs = build_osbs(FleetOptions(vens=VENS, ders_per_ven=DERS, seed=1))
    by_name = {o.name: o for o in osbs}
    event_id = pick_event_id(list(by_name))
    busy = {n for n in by_name if household_busy(name_seed(n), event_id)}
    served: Served = await serve(fast, run_jobs=True)
    store = served.vtn.store
    try:
        async with running(osbs, served.url) as stats, aiohttp.ClientSession() as session:
            api = Api(fast, session)

            async def all_reported() -> bool:
                ders = await store.list_ders(DerQuery(), SERVICE)
                return len(ders) == VENS * DERS and all(d.last_values for d in ders)

            await eventually(all_reported)
            await asyncio.sleep(3)  # a baseline of a few one-second reports
            page = await api.get(f"/ders?limit={VENS * DERS}")
            device_ids = [d["device_id"] for d in page["items"]]
            assert len(device_ids) == VENS * DERS
            vens = {v.ven_id: v.ven_name for v in await store.list_vens(SERVICE)}
            name_of = vens.get
            now = datetime.now(UTC)
            dtstart = datetime.fromtimestamp(int(now.timestamp()) + 3, UTC)
            status, created = await api.call("POST", "/events", {
                "event_id": event_id, "program": "e2e", "dtstart": dtstart.isoformat(),
                "signals": simple(2, 120), "targets": {"device_ids": device_ids},
                "recovery_s": 5})
            assert status == 201, created
            assert created["summary"] == {"vens": VENS, "ders": VENS * DERS}

            async def answered(mod: int) -> dict[str, Any]:
                doc: dict[str, Any] = {}

                async def check() -> bool:
                    doc.update(await api.get(f"/events/{event_id}"))
                    return all(d["delivered_mod"] == mod and d["opt_mod"] == mod
                               for d in doc["deliveries"]) and len(doc["deliveries"]) == VENS

                await eventually(check, timeout=20)
                return doc

            def decided(name: str, mod: int) -> str:
                held = by_name[name].events.held[event_id]  # type: ignore[union-attr]
                assert held.mod == mod
                return held.opt

            # every targeted VEN got it and answered what ven-sim decided
            doc = await answered(0)
            answers = {name_of(d["ven_id"]): d["response"] for d in doc["deliveries"]}
            assert answers == {n: decided(n, 0) for n in by_name}
            assert {n for n, a in answers.items() if a == OPT_OUT} >= busy
            opted_in = {n for n, a in answers.items() if a == OPT_IN}
            assert opted_in and busy
            for ven_id, name in vens.items():  # the busy households' optOut schedules
                opts = (await api.get(f"/opts?ven_id={ven_id}"))["items"]
                held = by_name[name].events.held[event_id]  # type: ignore[union-attr]
                if name in busy:
                    (opt,) = [o for o in opts if o["opt_id"] == held.opt_id]
                    assert opt["opt_type"] == OPT_OUT
                    assert opt["opt_reason"] == "notParticipating"
                    assert sorted(opt["resource_ids"]) == sorted(
                        d.resource_id for d in by_name[name].ders)
                    (window,) = opt["windows"]
                    assert datetime.fromisoformat(window["start"]) == dtstart
                    assert window["duration_s"] == 120
                elif held.opt_id is None:
                    assert opts == []

            # during the active period opted-in DERs draw less than they would have
            async def reports_into_the_event() -> bool:
                ders = await store.list_ders(DerQuery(), SERVICE)
                return all(lv.at >= dtstart + timedelta(seconds=5)
                           for d in ders for lv in d.last_values.values())

            await eventually(reports_into_the_event, timeout=20)
            shed = 0
            for der in await store.list_ders(DerQuery(), SERVICE):
                osb = by_name[name_of(der.ven_id)]  # type: ignore[index]
                i = [d.resource_id for d in osb.ders].index(der.resource_id)
                sim = osb.ders[i]
                (last,) = der.last_values.values()
                normal = sim.power(last.at.timestamp(), osb.location[1])
                held = osb.events.held[event_id]  # type: ignore[union-attr]
                if osb.name in opted_in and held.mask >> i & 1:  # a responding DER
                    assert last.value <= normal + 0.05, (osb.name, der.resource_id)
                    shed += last.value < normal - 0.05
                else:  # busy, untargeted by the signal, or unable: its normal load
                    assert abs(last.value - normal) <= 0.05, (osb.name, der.resource_id)
            assert shed >= 1
            await asyncio.sleep(1.5)  # the history flush (1 s) caught up
            response = await api.get(f"/events/{event_id}/response")
            assert response["status"] == "active"
            in_ders = [d for d in response["ders"] if name_of(d["ven_id"]) in opted_in]
            assert all(d["baseline_source"] == "window" for d in response["ders"])
            assert sum(d["delivered_w"] for d in in_ders) > 0
            assert response["total"]["ders_measured"] == VENS * DERS

            # a modification is redistributed and answered again at modificationNumber 1
            status, modified = await api.call(
                "PATCH", f"/events/{event_id}", {"signals": simple(3, 120)},
                headers={"If-Match": '"0"'})
            assert status == 200 and modified["modification_number"] == 1, modified
            doc = await answered(1)
            answers = {name_of(d["ven_id"]): d["response"] for d in doc["deliveries"]}
            assert answers == {n: decided(n, 1) for n in by_name}
            assert {n for n, a in answers.items() if a == OPT_OUT} >= busy

            # the cancellation reaches them (acknowledged with the answer they gave)
            status, cancelled = await api.call("POST", f"/events/{event_id}/cancel")
            assert status == 200 and cancelled["modification_number"] == 2, cancelled
            doc = await answered(2)
            assert doc["status_now"] == "cancelled"
            for name, osb in by_name.items():
                assert osb.events is not None and osb.events.held[event_id].cancelled, name
                assert not osb.events.live
            assert stats.events_received == 3 * VENS
            assert stats.opt_ins + stats.opt_outs == 3 * VENS  # never answered twice
            assert stats.errors == {} and stats.server_errors == 0
    finally:
        await served.stop()

