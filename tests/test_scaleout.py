"""Three ``vtn serve`` processes on one store (one SQLite file, or with TEST_STORE=mongo
one nx-27017 database), a ven-sim fleet spread over them.

What a user of a multi-node deployment relies on: any node serves any VEN's poll and DR
delivery (an event created through node 0 reaches VENs that poll nodes 1 and 2), the
scheduled jobs run once across the nodes (one log entry per liveness transition, the
sweep's shards spread over all three nodes), and a node killed with ``kill -9`` while
sweeping loses its leases: the others take its shards over and finish the work.
Periods are about a second; the test takes ~30 s.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from registry.api.auth import issue_token
from registry.discovery import LogQuery
from registry.port import SERVICE, DerQuery
from tests.conftest import free_port
from tests.mongo_server import MongoServer
from tests.test_durability import env, vtn_cmd
from tests.test_ven_sim import eventually
from ven_sim.fleet import FleetOptions, Scheduler, build_osbs
from ven_sim.link import HttpLink
from ven_sim.scenario import load_scenario
from ven_sim.session import Env
from ven_sim.stats import Stats
from vtn.app import make_store
from vtn.config import load_config

NODES, VENS, DERS, SHARDS = 3, 9, 2, 6
RUN = re.compile(r"job (liveness\.sweep/\d+) run by (node-\d)")
TAKEN = re.compile(r"job lease (liveness\.sweep/\d+) taken by (node-\d)")

CONFIG = """
[store]
url = "{url}"
[registration]
open_enrollment = true
poll_freq_s = 1
[reports]
status_granularity_s = 1
usage_granularity_s = 1
report_back_duration_s = 1
[liveness]
stale_after_polls = 3
offline_after_polls = 6
sweep_interval_s = 0.3
contact_flush_interval_s = 0.3
[events]
status_interval_s = 1
[jobs]
lease_ttl_s = 1.5
sweep_shards = {shards}
[api]
jwt_secret = "multi-node-test-secret-0123456789abcdef0123"
"""


@pytest.fixture
def store_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if os.environ.get("TEST_STORE", "sqlite") == "mongo":
        server: MongoServer = request.getfixturevalue("mongo_server")
        return server.url()
    return f"sqlite:///{tmp_path / 'shared.sqlite3'}"


async def start_nodes(tmp_path: Path, cfg: Path, ports: list[int]
                      ) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i, port in enumerate(ports):
        err = (tmp_path / f"node-{i}.log").open("wb")
        procs.append(subprocess.Popen(
            vtn_cmd("-v", "serve", "--config", str(cfg), "--data-dir",
                    str(tmp_path / f"data-{i}"), "--port", str(port)),
            env={**env(), "VTN_JOBS_NODE_ID": f"node-{i}"},
            stdout=subprocess.DEVNULL, stderr=err))
    async with aiohttp.ClientSession() as s:
        for port in ports:
            for _ in range(1200):  # 60 s: a loaded host starts three nodes slowly
                try:
                    async with s.get(f"http://127.0.0.1:{port}/health") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"node on port {port} did not start")
    return procs


def node_log(tmp_path: Path, i: int) -> str:
    return (tmp_path / f"node-{i}.log").read_text(errors="replace")


async def test_three_nodes_share_the_work_and_survive_a_kill_9(
    tmp_path: Path, store_url: str
) -> None:
    cfg_path = tmp_path / "vtn.toml"
    cfg_path.write_text(CONFIG.format(url=store_url, shards=SHARDS))
    config = load_config(cfg_path, data_dir=tmp_path / "data-test")
    ports = [free_port() for _ in range(NODES)]
    procs = await start_nodes(tmp_path, cfg_path, ports)
    store = make_store(config)
    await store.open()
    stop = asyncio.Event()
    try:
        osbs = build_osbs(FleetOptions(vens=VENS, ders_per_ven=DERS, seed=5))
        stats = Stats(vens=VENS, ders_per_ven=DERS, scenario="steady", client="oadr")
        loop = asyncio.get_running_loop()
        fleet_env = Env(load_scenario("steady"), poll_s=1.0, report_s=1.0,
                        rng=random.Random(5), now=loop.time)
        async with aiohttp.ClientSession() as session:
            links = [HttpLink(session, f"http://127.0.0.1:{p}/OpenADR2/Simple/2.0b", stats,
                              validate=True) for p in ports]  # every reply XSD-validated
            sched = Scheduler(osbs, links[0], fleet_env, 6, link_of=lambda i: links[i % NODES])
            fleet = asyncio.create_task(sched.run(stop, None, 0.5, None))

            async def all_reported() -> bool:
                ders = await store.list_ders(DerQuery(), SERVICE)
                return len(ders) == VENS * DERS and all(d.last_values for d in ders)

            await eventually(all_reported)
            # a DR event created through node 0 reaches every VEN, whichever node it polls
            token = issue_token(config, "service")
            auth = {"Authorization": f"Bearer {token}"}
            start = datetime.now(UTC) + timedelta(seconds=30)
            body = {"event_id": "multi-node", "program": "scale", "dtstart": start.isoformat(),
                    "signals": [{"signal_name": "SIMPLE", "signal_type": "level",
                                 "intervals": [{"duration_s": 60, "value": 1}]}],
                    "targets": {"ven_ids": [v.ven_id for v in await store.list_vens(SERVICE)]}}
            async with session.post(f"http://127.0.0.1:{ports[0]}/api/v1/events", json=body,
                                    headers=auth) as r:
                assert r.status == 201, await r.text()

            async def delivered() -> bool:
                url = f"http://127.0.0.1:{ports[1]}/api/v1/events/multi-node"
                async with session.get(url, headers=auth) as r:
                    doc: dict[str, Any] = await r.json()
                return (len(doc["deliveries"]) == VENS
                        and all(d["delivered_mod"] == 0 for d in doc["deliveries"]))

            await eventually(delivered, timeout=20)
            assert stats.events_received >= VENS
            mark = await store.last_seq()
            stop.set()  # the fleet falls silent: every VEN goes stale, then offline
            await asyncio.wait_for(fleet, 30)
        assert not [k for k in stats.errors if k.startswith("http 5")], stats.errors

        # a node is killed in the middle of the wave of transitions (it sweeps every 0.3 s)
        async def first_transitions() -> bool:
            return bool(await store.find_log(LogQuery(after=mark, kind=["ven.liveness"]),
                                             SERVICE))

        await eventually(first_transitions, timeout=20)
        victim = procs[2]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        held_by_victim = {m[0] for m in RUN.findall(node_log(tmp_path, 2))[-SHARDS:]}

        async def all_offline() -> bool:
            return all(v.liveness.value == "offline" for v in await store.list_vens(SERVICE))

        await eventually(all_offline, timeout=30)
        entries = await store.find_log(LogQuery(after=mark, kind=["ven.liveness"],
                                                limit=1000), SERVICE)
        per_transition = Counter((e.ven_id, e.data["to"]) for e in entries)
        assert set(per_transition.values()) == {1}  # each transition logged once
        assert {to for _, to in per_transition} == {"stale", "offline"}
        assert len({v for v, _ in per_transition}) == VENS

        runs = [RUN.findall(node_log(tmp_path, i)) for i in range(NODES)]
        assert all(runs), "every node ran some sweep shards"
        taken_after = set()
        for i in (0, 1):
            taken_after |= {s for s, _ in TAKEN.findall(node_log(tmp_path, i))}
        assert held_by_victim and held_by_victim <= taken_after
        for i in (0, 1):
            assert "Traceback" not in node_log(tmp_path, i)
    finally:
        stop.set()
        await store.close()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
