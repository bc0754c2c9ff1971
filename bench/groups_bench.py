"""Roll-up of a 100k-member DER group: a full evaluation, and the cost of keeping it
current while 10k DERs change status per minute. One command:

    python bench/groups_bench.py [--ders 100000] [--store sqlite|mongo] [--mongo-uri URI]

Fleet: N DERs of aggregator A1 (4 per VEN, mixed classes and types). Groups: a dynamic
one (filter availability=true: every DER), a static one (every DER as an explicit
include) and a mixed one (a class filter plus 1000 includes and 1000 excludes).

Measured (wall and process CPU, median of --repeat runs):
* baseline: ``der_briefs`` over the same filter — reading the members the way the
  OpenADR offer does, the floor of any full pass over them;
* ``rollup`` of each group (registry.group_status: the API's /status, the SSE job);
* ``forecast`` 24 h in 15-minute slots of the dynamic group;
* churn: 10k status updates (available capacity and online flag, as oadrUpdateReports
  write them, in batches of 500) with and without the group status job running once in
  the same minute, i.e. what keeping the roll-up current costs per minute.

Starts nx-27017 for --store mongo unless --mongo-uri (or TEST_MONGO_URI) is given.
Writes bench/results/groups-<store>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from registry import group_status  # noqa: E402
from registry.discovery import DiscoveryQuery  # noqa: E402
from registry.group_model import Group, MemberKind  # noqa: E402
from registry.models import Der, DerStatus, DeviceClass, DeviceType, Liveness, Ven  # noqa: E402
from registry.port import Batch, DerStatusUpdate, Scope, Store  # noqa: E402
from vtn.config import load_config  # noqa: E402
from vtn.group_jobs import publish_status  # noqa: E402
from vtn.services.base import Context  # noqa: E402

A1 = Scope("aggregator", aggregator_id="A1")
TYPES = {DeviceClass.PV: DeviceType.GENERATION, DeviceClass.STORAGE: DeviceType.STORAGE}


def fleet(n: int, rng: random.Random) -> tuple[list[Ven], list[Der]]:
    vens, ders = [], []
    classes = list(DeviceClass)
    for v in range(n // 4):
        ven_id = f"osb-{v:06d}"
        vens.append(Ven(ven_id=ven_id, ven_name=ven_id, aggregator_id="A1", registered=True))
        for r in range(4):
            cls = classes[rng.randrange(len(classes))]
            ders.append(Der(
                device_id=f"d{v:06d}{r}", ven_id=ven_id, resource_id=f"res-{r}",
                device_name=f"{ven_id}-{r}", aggregator_id="A1", device_class=cls,
                device_type=TYPES.get(cls, DeviceType.DEMAND),
                max_capacity=rng.uniform(500, 11000), available_capacity=rng.uniform(0, 500),
                liveness=Liveness.ONLINE if rng.random() < 0.97 else Liveness.OFFLINE,
                status=DerStatus(online=True)))
    return vens, ders


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[dict[str, float], Any]:
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        result = await fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {"wall_ms": round(med(walls) * 1000, 1), "cpu_ms": round(med(cpus) * 1000, 1)}, result


async def churn(store: Store, ids: list[str], rng: random.Random, n: int) -> float:
    """n status updates in batches of 500 (what n DERs reporting once write); seconds."""
    t = time.perf_counter()
    now = datetime.now(UTC)
    picked = rng.sample(ids, min(n, len(ids)))
    for i in range(0, len(picked), 500):
        await store.commit(Batch(der_status=[
            DerStatusUpdate(device_id=d, at=now, status=DerStatus(online=rng.random() < 0.9),
                            available_capacity=rng.uniform(0, 500))
            for d in picked[i:i + 500]]))
    return time.perf_counter() - t


async def run(store: Store, n: int, repeat: int) -> dict[str, Any]:
    rng = random.Random(1)
    vens, ders = fleet(n, rng)
    t = time.perf_counter()
    for i in range(0, len(ders), 2000):
        await store.commit(Batch(vens=vens[i // 4:(i + 2000) // 4], ders=ders[i:i + 2000]))
    load_s = time.perf_counter() - t
    ids = [d.device_id for d in ders]
    dynamic = Group(group_id="g-dyn", aggregator_id="A1", name="dyn",
                    filters={"availability": True})
    static = Group(group_id="g-static", aggregator_id="A1", name="static", filters=None,
                   includes=n)
    mixed = Group(group_id="g-mixed", aggregator_id="A1", name="mixed",
                  filters={"device_class": ["evCharger", "hvacDevice"]}, includes=1000,
                  excludes=1000)
    await store.commit(Batch(groups=[(dynamic, None), (static, None), (mixed, None)]))
    for i in range(0, n, 5000):
        await store.commit(Batch(group_members=[
            ("g-static", d, MemberKind.INCLUDE) for d in ids[i:i + 5000]]))
    sample = rng.sample(ids, 2000)
    await store.commit(Batch(group_members=[
        ("g-mixed", d, MemberKind.INCLUDE if k < 1000 else MemberKind.EXCLUDE)
        for k, d in enumerate(sample)]))
    now = datetime.now(UTC)
    out: dict[str, Any] = {"ders": n, "load_s": round(load_s, 1)}
    base, briefs = await timed(lambda: store.der_briefs(
        DiscoveryQuery(availability=True), A1), repeat)
    assert len(briefs) == n
    out["baseline_der_briefs"] = base
    for g in (dynamic, static, mixed):
        cost, r = await timed(lambda g=g: group_status.rollup(store, g, A1, now), repeat)
        out[f"rollup_{g.name}"] = {**cost, "members": r.members,
                                   "ratio_to_baseline": round(cost["wall_ms"] /
                                                              base["wall_ms"], 2)}
    assert out["rollup_dyn"]["members"] == out["rollup_static"]["members"] == n
    cost, f = await timed(lambda: group_status.forecast(
        store, dynamic, A1, now, timedelta(hours=24), timedelta(minutes=15)), 1)
    out["forecast_24h_15min"] = {**cost, "slots": len(f["slots"])}
    # churn: 10k status changes per minute, without and with the status job that minute
    cfg = load_config(None, data_dir=tempfile.mkdtemp())
    ctx = Context(store=store, config=cfg, clock=lambda: datetime.now(UTC))
    await publish_status(ctx)  # first publication of the three groups
    plain, plain_cpu = [], []
    for _ in range(repeat):
        c = time.process_time()
        plain.append(await churn(store, ids, rng, 10_000))
        plain_cpu.append(time.process_time() - c)
    job_walls, job_cpu, logged = [], [], 0
    for _ in range(repeat):
        await churn(store, ids, rng, 10_000)
        t, c = time.perf_counter(), time.process_time()
        logged += await publish_status(ctx)
        job_walls.append(time.perf_counter() - t)
        job_cpu.append(time.process_time() - c)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    job = med(job_walls)
    out["churn_10k_status_writes_s"] = round(med(plain), 2)
    out["churn_10k_status_writes_cpu_s"] = round(med(plain_cpu), 2)
    out["status_job_3_groups_s"] = round(job, 2)
    out["status_job_3_groups_cpu_s"] = round(med(job_cpu), 2)
    out["status_job_entries_per_run"] = round(logged / repeat, 1)
    out["keep_current_share_of_a_minute"] = round(job / 60, 4)
    out["keep_current_vs_writes"] = round(job / med(plain), 2)
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    server = None
    if args.store == "mongo":
        from registry.mongo import MongoStore
        from tests.mongo_server import MongoServer
        uri = args.mongo_uri
        if uri is None:
            server = MongoServer().start()
            uri = server.url("groups_bench")
        store: Store = MongoStore(uri)
    else:
        from registry.sqlite import SqliteStore
        store = SqliteStore(Path(tempfile.mkdtemp()) / "groups.sqlite3")
    await store.open()
    try:
        return await run(store, args.ders, args.repeat)
    finally:
        await store.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ders", type=int, default=100_000)
    parser.add_argument("--store", choices=("sqlite", "mongo"), default="sqlite")
    parser.add_argument("--mongo-uri", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    result = asyncio.run(main(a))
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"groups-{a.store}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
