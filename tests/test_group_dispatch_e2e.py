"""The whole group dispatch story over real HTTP, with ven-sim's OSBs.

An aggregator saves a group of its DERs, dispatches 20 kW; every member VEN gets its
LOAD_DISPATCH event (every VTN reply XSD-validated by the link); the simulated OSBs opt
in or out as ven-sim decides; the re-dispatch job moves the opted-out share to the others;
the opted-in OSBs shed load and the status reports the measured response. Periods are one
second, so it takes about 25 s.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from registry.api.auth import issue_token
from registry.port import SERVICE, DerQuery
from tests.conftest import Served, serve
from tests.test_ven_sim import eventually
from tests.test_ven_sim_events_e2e import running
from ven_sim.events import OPT_IN, OPT_OUT, household_busy, name_seed
from ven_sim.fleet import FleetOptions, build_osbs
from vtn.config import Config
from vtn.services.admin import provision_ven

VENS, DERS = 6, 3
KW = 20.0


@pytest.fixture
def fast(config: Config) -> Config:
    config.registration.open_enrollment = True
    config.registration.poll_freq_s = 1
    config.reports.usage_granularity_s = config.reports.status_granularity_s = 1
    config.reports.report_back_duration_s = 1
    config.reports.history_bucket_s = config.reports.history_flush_s = 1
    config.events.status_interval_s = 1
    return config


class Client:
    def __init__(self, config: Config, session: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{config.http.port}/api/v1"
        self.session = session
        token = issue_token(config, "aggregator", aggregator_id="agg1")
        self.auth = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, json=body,
                                        headers=self.auth) as r:
            return r.status, await r.json(content_type=None)

    async def get(self, path: str) -> Any:
        status, doc = await self.call("GET", path)
        assert status == 200, doc
        return doc


def pick_dispatch_id(names_in_ven_order: list[str]) -> str:
    """A dispatch id whose events (<id>.<n>, n in ven_id order) make some households busy
    in ven-sim and others not."""
    for i in range(1000):
        busy = [household_busy(name_seed(n), f"gd{i}.{k}")
                for k, n in enumerate(names_in_ven_order)]
        if any(busy) and not all(busy):
            return f"gd{i}"
    raise AssertionError("no mixed dispatch id")


async def test_a_group_delivers_20_kw_with_opt_outs_redispatched(fast: Config) -> None:
    osbs = build_osbs(FleetOptions(vens=VENS, ders_per_ven=DERS, seed=5))
    by_name = {o.name: o for o in osbs}
    served: Served = await serve(fast, run_jobs=True)
    for o in osbs:
        await provision_ven(served.vtn.ctx, name=o.name, aggregator_id="agg1")
    store = served.vtn.store
    try:
        async with running(osbs, served.url) as stats, aiohttp.ClientSession() as session:
            api = Client(fast, session)

            async def all_reported() -> bool:
                ders = await store.list_ders(DerQuery(), SERVICE)
                return len(ders) == VENS * DERS and all(d.last_values for d in ders)

            await eventually(all_reported)
            await asyncio.sleep(3)  # a baseline of a few one-second reports
            status, view = await api.call("POST", "/groups", {"name": "street", "filters": {}})
            assert status == 201, view
            name_of = {v.ven_id: v.ven_name for v in await store.list_vens(SERVICE)}
            dispatch_id = pick_dispatch_id([name_of[v] for v in sorted(name_of)])
            dtstart = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) + 3, UTC)
            status, created = await api.call("POST", "/dispatches", {
                "dispatch_id": dispatch_id, "group": "street", "dtstart": dtstart.isoformat(),
                "slots": [{"duration_s": 120, "kw": KW}], "baseline_s": 3})
            assert status == 201, created
            assert created["summary"]["vens"] == VENS, created  # every OSB has a member
            doc = await api.get(f"/dispatches/{dispatch_id}/status")
            event_of = {m["ven_id"]: m["event_id"] for m in doc["members"] if m["event_id"]}
            assert sorted(event_of.values()) == [f"{dispatch_id}.{k}" for k in range(VENS)]

            def decided(ven_id: str) -> str:
                held = by_name[name_of[ven_id]].events.held[event_of[ven_id]]  # type: ignore[union-attr]
                return held.opt

            answers: dict[str, str] = {}

            async def answered() -> bool:  # every OSB answered the modification it holds
                for ven_id, event_id in event_of.items():
                    ev = await api.get(f"/events/{event_id}")
                    (share,) = ev["deliveries"]
                    if share["opt_mod"] != ev["modification_number"]:
                        return False
                    answers[ven_id] = share["opt"]
                return True

            await eventually(answered, timeout=30)
            first = {v: decided(v) for v in event_of}
            assert answers == first  # the registry holds what ven-sim decided
            out = {v for v, a in first.items() if a == OPT_OUT}
            kept = {v for v, a in first.items() if a == OPT_IN}
            assert out and kept, first

            # the opted-out share moves to the members still in
            async def redispatched() -> dict[str, Any]:
                got: dict[str, Any] = {}

                async def check() -> bool:
                    got.update(await api.get(f"/dispatches/{dispatch_id}/status"))
                    # every member of an opted-out VEN that had a share is opted_out
                    # (its members without capacity stay "unavailable")
                    shares = [m for m in got["members"]
                              if m["ven_id"] in out and m["event_id"]]
                    return got["redispatches"] >= 1 and bool(shares) and all(
                        m["state"] == "opted_out" for m in shares)

                await eventually(check, timeout=30)
                return got

            doc = await redispatched()
            live = [m for m in doc["members"] if m["state"] == "assigned"]
            assert live and {m["ven_id"] for m in live} <= kept
            cap = sum(m["capacity_kw"] for m in live)
            f = min(1.0, KW / cap)
            for m in live:
                assert m["assigned_kw"] == [pytest.approx(m["capacity_kw"] * f, abs=2e-3)]
            everyone = sum(m["capacity_kw"] for m in doc["members"] if m["event_id"])
            before = sum(m["capacity_kw"] for m in live) * min(1.0, KW / everyone)
            (slot,) = doc["slots"]
            assert slot["requested_kw"] == KW
            assert slot["assigned_kw"] == pytest.approx(min(KW, cap), abs=0.01)
            assert slot["assigned_kw"] > before + 0.01  # the others took over a share
            assert slot["shortfall_kw"] == pytest.approx(max(0.0, KW - cap), abs=0.01)

            # the opted-in OSBs answer their modified events, shed load, it is measured
            async def delivering() -> bool:
                doc.update(await api.get(f"/dispatches/{dispatch_id}/status"))
                (s,) = doc["slots"]
                return s["opted_in_kw"] > 0 and (s["measured_kw"] or 0) > 0.05

            await eventually(delivering, timeout=30)
            for v in kept:
                ev = await api.get(f"/events/{event_of[v]}")
                assert ev["modification_number"] >= 1  # re-dispatched: a bigger share
                (sig,) = ev["signals"]
                assert sig["signal_name"] == "LOAD_DISPATCH" and sig["units"] == "kW"
            response = await api.get(f"/events/{event_of[sorted(kept)[0]]}/response")
            assert response["status"] == "active"

            # cancelling the dispatch cancels every event on the OSBs
            status, cancelled = await api.call("POST", f"/dispatches/{dispatch_id}/cancel")
            assert status == 200 and cancelled["status_now"] == "cancelled", cancelled

            async def all_cancelled() -> bool:
                return all(by_name[name_of[v]].events.held[e].cancelled  # type: ignore[union-attr]
                           for v, e in event_of.items())

            await eventually(all_cancelled, timeout=20)
            # 450 answers an OSB's optIn to a modification the re-dispatch has just replaced
            # (in flight while the event changed: 2.0b's "old version"); it answers the new
            assert set(stats.errors) <= {"oadr 450"} and stats.server_errors == 0, stats.errors
    finally:
        await served.stop()
