"""The VEN simulator against our VTN over real HTTP: what an operator would see."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from registry.models import DeviceClass
from registry.port import SERVICE, DerQuery
from tests.conftest import Served, serve
from ven_sim.devices import distance_km
from ven_sim.fleet import FleetOptions, build_osbs, run_fleet
from ven_sim.osb import ROLE_FLAP
from ven_sim.scenario import ScenarioError, builtin_names, load_scenario, parse_scenario
from ven_sim.stats import LogHistogram, Stats
from vtn.config import Config
from vtn.liveness import sweep
from vtn.services import profile

CENTER = (48.14, 11.58)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


@pytest.fixture
def fast(config: Config) -> Config:
    config.registration.open_enrollment = True
    config.registration.poll_freq_s = 1
    config.reports.usage_granularity_s = 1
    config.reports.status_granularity_s = 1
    config.reports.report_back_duration_s = 1
    return config


@asynccontextmanager
async def fleet(options: FleetOptions) -> AsyncIterator[tuple[list[Stats], asyncio.Event]]:
    """Run a fleet in the background; yields (latest stats holder, stop event)."""
    stop = asyncio.Event()
    latest: list[Stats] = []

    def on_tick(stats: Stats) -> None:
        latest[:] = [stats]

    task = asyncio.create_task(run_fleet(options, stop, on_tick))
    try:
        yield latest, stop
    finally:
        stop.set()
        latest[:] = [await asyncio.wait_for(task, 30)]


@pytest.fixture
async def served(fast: Config) -> AsyncIterator[Served]:
    s = await serve(fast)
    yield s
    await s.stop()


def options(served: Served, **kw: object) -> FleetOptions:
    base: dict[str, object] = dict(vtn=served.url, vens=5, ders_per_ven=4, center=CENTER,
                                   radius_km=15.0, seed=7)
    base.update(kw)
    return FleetOptions(**base)  # type: ignore[arg-type]


async def test_steady_fleet_fills_the_registry_with_its_ders(served: Served) -> None:
    opts = options(served)
    expected = {o.name: {d.resource_id: d for d in o.ders} for o in build_osbs(opts)}
    store = served.vtn.store

    async def all_reported() -> bool:
        ders = await store.list_ders(DerQuery(), SERVICE)
        return len(ders) == 20 and all(d.max_capacity is not None and d.last_values
                                       for d in ders)

    async with fleet(opts) as (latest, _):
        await eventually(all_reported)
        first = {d.device_id: d.last_report_at for d in await store.list_ders(DerQuery(), SERVICE)}

        async def values_moved_on() -> bool:
            ders = await store.list_ders(DerQuery(), SERVICE)
            return all(d.last_report_at and d.last_report_at > first[d.device_id] for d in ders)

        await eventually(values_moved_on)

    stats = latest[0]
    vens = {v.ven_name: v for v in await store.list_vens(SERVICE)}
    assert set(vens) == set(expected) == {f"osb-0000{i}" for i in range(1, 6)}
    for name, sim_ders in expected.items():
        ders = {d.resource_id: d for d in await store.ders_of_ven(vens[name].ven_id)}
        assert set(ders) == set(sim_ders)
        for rid, der in ders.items():
            sim = sim_ders[rid]
            assert der.device_class == profile.device_class_of([sim.kind.mrid])
            assert der.end_device_mrids == [sim.kind.mrid]
            assert der.max_capacity == sim.capacity_w
            assert der.available_capacity is not None
            assert 0 <= der.available_capacity <= der.max_capacity
            assert der.location is not None
            assert distance_km(CENTER, (der.location.lat, der.location.lon)) <= 15.0
            assert set(der.last_values) == {sim.usage_rid}
            assert der.last_values[sim.usage_rid].units == "W"
            assert der.status.online is not None
            # a DER its OSB reports as not online (ven-sim: 1 % of DER-hours) is offline
            assert der.liveness == ("offline" if der.status.online is False else "online")
            if der.device_class in (DeviceClass.HVAC, DeviceClass.DHW):
                assert "setPoint" in der.status.load_control
    assert stats.vens_registered == 5 and stats.registrations == 5
    assert stats.errors == {}
    assert stats.sent["oadrUpdateReport"] > 0 and stats.sent["oadrPoll"] > 0
    # the VTN's own oadrRegisterReport came on poll and was answered
    assert stats.received["oadrRegisterReport"] == 5
    assert stats.sent["oadrRegisteredReport"] == 5
    assert stats.latency.total == stats.requests


async def test_bad_scenario_counts_refusals_and_the_vtn_never_answers_5xx(
    served: Served,
) -> None:
    async with fleet(options(served, scenario="bad")) as (latest, stop):

        async def enough_bad() -> bool:
            return bool(latest) and all(latest[0].bad_sent[k] >= 2 for k in
                                        ("malformed", "schema", "unknown_id", "wrong_service"))

        await eventually(enough_bad, timeout=60)
    stats = latest[0]
    assert stats.error_count > 0
    assert stats.server_errors == 0
    for kind, answers in stats.bad_answers.items():
        for answer in answers:
            assert answer.startswith("http 4") or (
                answer.startswith("oadr ") and answer != "oadr 200"
            ), (kind, answer)
    assert set(stats.bad_answers["malformed"]) == {"http 400"}
    # the well-behaved traffic of the same VENs still works
    assert stats.vens_registered == 5
    assert len(await served.vtn.store.list_ders(DerQuery(), SERVICE)) == 20


async def test_flapping_vens_go_stale_and_come_back_online(
    fast: Config, tmp_path: Path
) -> None:
    fast.liveness.stale_after_polls = 3
    served = await serve(fast)
    scenario = tmp_path / "flap.toml"
    scenario.write_text('name = "flap"\n[flapping]\nshare = 0.5\nevery_s = 3\npause_s = 6\n')
    opts = options(served, scenario=str(scenario))
    flappers = {o.name for o in build_osbs(opts) if o.role == ROLE_FLAP}
    assert flappers
    store = served.vtn.store
    went_stale: set[str] = set()
    try:
        async with fleet(opts) as (latest, _):

            async def someone_stale() -> bool:
                for change in await sweep(served.vtn.ctx):
                    if change.new == "stale":
                        went_stale.add(change.ven_id)
                return bool(went_stale) and bool(latest) and latest[0].vens_paused > 0

            await eventually(someone_stale, timeout=60)

            async def back_online() -> bool:
                await sweep(served.vtn.ctx)
                vens = [await store.get_ven(v) for v in went_stale]
                return all(v is not None and v.liveness == "online" for v in vens)

            await eventually(back_online, timeout=60)
        names = {v.ven_name for v in await store.list_vens(SERVICE) if v.ven_id in went_stale}
        assert names <= flappers
    finally:
        await served.stop()


async def test_openleadr_client_fleet_registers(served: Served) -> None:
    opts = options(served, vens=2, client="openleadr", report_s=1.0)
    sim = {o.name: o for o in build_osbs(opts)}
    store = served.vtn.store

    async def reported() -> bool:
        ders = await store.list_ders(DerQuery(), SERVICE)
        return len(ders) == 8 and all(d.last_values for d in ders)

    async with fleet(opts) as (latest, _):
        await eventually(reported)
    vens = {v.ven_name: v for v in await store.list_vens(SERVICE)}
    assert set(vens) == set(sim) and all(v.registered for v in vens.values())
    for name, osb in sim.items():
        ders = {d.resource_id: d for d in await store.ders_of_ven(vens[name].ven_id)}
        assert {rid: d.device_class for rid, d in ders.items()} == {
            d.resource_id: profile.device_class_of([d.kind.mrid]) for d in osb.ders
        }
    assert latest[0].sent["oadrUpdateReport"] > 0


async def test_cli_run_writes_a_json_summary(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ven_sim", "run", "--vtn", served.url.split("/OpenADR2")[0],
        "--vens", "3", "--ders-per-ven", "2", "--duration", "3s", "--poll", "PT1S",
        "--json", str(out), "--quiet", "--cancel-on-exit",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    summary = json.loads(out.read_text())
    assert summary["vens"] == 3 and summary["registrations"] == 3
    assert summary["errors"] == {} and summary["server_errors"] == 0
    assert summary["sent"]["oadrCreatePartyRegistration"] == 3
    assert summary["sent"]["oadrCancelPartyRegistration"] == 3
    assert summary["received"]["oadrCanceledPartyRegistration"] == 3
    assert summary["sent"]["oadrPoll"] >= 3
    assert summary["latency"]["count"] == summary["requests"]
    assert summary["latency"]["p50_ms"] is not None
    vens = await served.vtn.store.list_vens(SERVICE)
    assert sorted(v.ven_name for v in vens) == ["osb-00001", "osb-00002", "osb-00003"]
    assert not any(v.registered for v in vens)  # --cancel-on-exit


async def test_vtn_initiated_cancel_and_reregistration_are_answered(served: Served) -> None:
    from vtn.services.admin import cancel_registration, request_reregistration

    store = served.vtn.store
    ctx = served.vtn.ctx
    async with fleet(options(served, vens=2)) as (latest, _):

        async def registered() -> bool:
            vens = await store.list_vens(SERVICE)
            return len(vens) == 2 and all(v.registered for v in vens)

        await eventually(registered)
        await request_reregistration(ctx, "osb-00001")
        await cancel_registration(ctx, "osb-00002")

        async def handled() -> bool:
            return bool(latest) and latest[0].sent["oadrCanceledPartyRegistration"] == 1 and (
                latest[0].registrations >= 4)

        await eventually(handled)
        await eventually(registered)  # osb-00002 registered again (on_vtn_cancel)
    stats = latest[0]
    assert stats.received["oadrRequestReregistration"] == 1
    assert stats.received["oadrCancelPartyRegistration"] == 1
    assert stats.errors == {}


def test_scenarios_ship_as_toml_and_typos_are_refused() -> None:
    assert {"steady", "flapping", "churn", "bad"} <= set(builtin_names())
    assert load_scenario("flapping").flapping.share > 0
    assert load_scenario("churn").churn.share > 0
    with pytest.raises(ScenarioError, match="unknown keys"):
        parse_scenario("[flapping]\nshar = 0.5\n")
    with pytest.raises(ScenarioError, match="no scenario"):
        load_scenario("nonexistent")


def test_latency_histogram_has_fixed_size_and_sane_percentiles() -> None:
    h = LogHistogram()
    for i in range(1, 10001):
        h.add(i / 10000)  # 0.1 ms .. 1 s, uniform
    assert len(h.counts) == LogHistogram.BUCKETS + 1
    p50, p99 = h.quantile(0.5), h.quantile(0.99)
    assert p50 is not None and 0.5 <= p50 <= 0.5 * 1.13
    assert p99 is not None and 0.99 <= p99 <= 1.0
