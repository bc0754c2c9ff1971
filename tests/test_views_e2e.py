"""End to end over real HTTP: OSB fleets of two aggregators and one aggregator VEN each.

The OSBs are ven-sim households; the aggregators are ven-sim's aggregator mode. Each
aggregator must discover exactly its own DERs through OpenADR, see their statuses follow
what the OSBs do (here: one fleet stops, its DERs go offline), and nothing of the other.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp

from registry.models import VenRole
from registry.port import SERVICE, DerQuery
from tests.conftest import Served, serve
from tests.oadr import call, metadata, register
from tests.test_interop_openleadr import eventually as until
from ven_sim.aggregator import Aggregator
from ven_sim.fleet import FleetOptions, run_fleet, ven_name
from ven_sim.link import HttpLink
from ven_sim.stats import Stats
from vtn.config import Config
from vtn.services.admin import provision_ven


def fast(config: Config) -> Config:
    config.registration.poll_freq_s = 1
    config.reports.status_granularity_s = 1
    config.reports.usage_granularity_s = 1
    config.reports.report_back_duration_s = 1
    config.liveness.stale_after_polls = 2
    config.liveness.offline_after_polls = 3
    config.liveness.sweep_interval_s = 0.3
    config.liveness.contact_flush_interval_s = 0.3
    config.views.tick_s = 0.2
    config.views.refresh_s = 0.3
    config.views.min_period_s = 1
    return config


async def ders_of(served: Served, aggregator_id: str) -> set[str]:
    return set(await online_of(served, aggregator_id))


async def online_of(served: Served, aggregator_id: str) -> dict[str, bool]:
    """Each DER of the aggregator and whether the registry has it online (an OSB reports
    a DER as not online now and then: ven-sim does for 1 % of DER-hours)."""
    ders = await served.vtn.store.list_ders(DerQuery(aggregator_id=aggregator_id), SERVICE)
    return {d.device_id: d.liveness == "online" for d in ders}


async def test_each_aggregator_sees_exactly_its_ders_following_the_osbs(config: Config) -> None:
    served = await serve(fast(config), run_jobs=True)
    fleets = {
        agg: FleetOptions(vtn=served.url, vens=3, ders_per_ven=3, name_prefix=f"{agg}-osb-",
                          seed=i + 3, ramp_s=0.2, validate=True)
        for i, agg in enumerate(("A1", "A2"))
    }
    ctx = served.vtn.ctx
    for agg, opts in fleets.items():
        for i in range(opts.vens):
            await provision_ven(ctx, name=ven_name(opts, i), aggregator_id=agg)
        await provision_ven(ctx, name=f"agg-{agg}", aggregator_id=agg, role=VenRole.AGGREGATOR)
    stops = {agg: asyncio.Event() for agg in fleets}
    tasks = {agg: asyncio.create_task(run_fleet(o, stops[agg])) for agg, o in fleets.items()}
    stats = Stats()
    session = aiohttp.ClientSession()
    link = HttpLink(session, served.url, stats, validate=True)  # every VTN reply XSD-checked
    aggs = {agg: Aggregator(link, f"agg-{agg}", granularity_s=1, report_back_s=1, poll_s=0.2)
            for agg in fleets}
    running = [asyncio.create_task(a.run(120)) for a in aggs.values()]
    try:
        def seen(agg: str) -> dict[str, bool | None]:
            view = aggs[agg].views.get("all")
            return {d.device_id: d.online for d in view.ders.values()} if view else {}

        async def everyone_discovered() -> bool:
            for agg in fleets:
                expected = await online_of(served, agg)
                if len(expected) != 9 or seen(agg) != expected or sum(expected.values()) < 7:
                    return False
            return True

        await until(everyone_discovered, 30)
        assert not set(seen("A1")) & set(seen("A2"))  # nothing of the other aggregator
        a1 = aggs["A1"].views["all"]
        assert a1.aggregates["agg.online"] == sum((await online_of(served, "A1")).values())
        sample = next(iter(a1.ders.values()))
        der = await served.vtn.store.get_der(sample.device_id, SERVICE)
        assert der is not None and (sample.resource_id, sample.ven_id) == (
            der.resource_id, der.ven_id)
        assert sample.device_class == der.device_class.value

        # A1's households stop polling: the VTN marks them offline and A1 is told so
        stops["A1"].set()
        await tasks["A1"]

        async def a1_offline() -> bool:
            view = aggs["A1"].views["all"]
            return (all(online is False for online in seen("A1").values())
                    and view.aggregates.get("agg.online") == 0.0)

        await until(a1_offline, 30)
        assert seen("A2") == await online_of(served, "A2")  # A2's are as they were
        assert set(seen("A2")) == await ders_of(served, "A2")
        for a in aggs.values():
            assert a.errors == []
        assert not [k for k in stats.errors if k.startswith(("http", "decode"))], stats.errors
    finally:
        for t in running:
            t.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for s in stops.values():
            s.set()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        await session.close()
        await served.stop()


async def test_ven_sim_aggregator_command_prints_what_it_discovers(config: Config,
                                                                  tmp_path: Path) -> None:
    fast(config)
    config.liveness.stale_after_polls = config.liveness.offline_after_polls = 1000
    served = await serve(config, run_jobs=True)  # the OSB below registers, then is silent
    try:
        ctx = served.vtn.ctx
        await provision_ven(ctx, name="agg-cli", aggregator_id="A1", role=VenRole.AGGREGATOR)
        reg = await register(served.vtn, "osb-1", aggregator_id="A1")
        await call(served.vtn, "EiReport", metadata(reg.ven_id or "", {
            "boiler-1": "Water_Heater", "pv-1": "PV"}))
        out = tmp_path / "found.json"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ven_sim.cli", "aggregator", "--vtn", served.url,
            "--name", "agg-cli", "--granularity", "1s", "--report-back", "1s",
            "--duration", "3s", "--validate", "--json", str(out),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, output.decode()
        found = json.loads(out.read_text())
        view = found["views"]["all"]
        assert view["ders"] == 2 and view["by_class"] == {"dhwDevice": 1, "pvSystem": 1}
        assert found["updates"] >= 1 and view["online"] == 2
        assert "all" in output.decode()
    finally:
        await served.stop()
