"""Discovery API latency: ``python bench/api_bench.py --n 100000`` (SQLite, the default)
or ``--store mongo`` (nx-27017 started on a free port, or ``--mongo-url``).

Generates N DERs directly through ``store.commit`` (spread over a region of ~100 km
around Berlin, denser in towns), then times two query families with varied parameters,
at the store (``find_ders``) and through HTTP (``GET /api/v1/ders`` on loopback):

* filtered + sorted + limit 100 (class / aggregator / liveness / flags / capacity range,
  sorted by capacity, name or update time)
* 5 km geo (``near=...&radius_m=5000``, some with a class filter), sorted by distance

Reports p50/p95 in ms; ``--markdown`` prints table rows for docs/benchmarks.md.
The database is kept (``--db``) so a rerun skips generation.

MongoDB leg: the same DERs (same seed) are written with ``MongoStore.import_records``
(the restore path: one replace by device_id per DER; the METADATA upsert path is a
per-VEN operation), into database ``apibench<N>``; nx-27017 keeps its files under
``--db`` (default /tmp/api-bench-mongo-N), so a rerun skips generation there too. The
same query sets run at the store and, unless ``--no-http``, through HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from registry.api.auth import issue_token  # noqa: E402
from registry.discovery import DiscoveryQuery  # noqa: E402
from registry.models import Der, DeviceClass, DeviceType, Liveness, Location  # noqa: E402
from registry.port import SERVICE, Batch, Scope, Store  # noqa: E402
from registry.sqlite import SqliteStore  # noqa: E402
from tests.mongo_server import _free_port, _nx_command, _ping  # noqa: E402
from vtn.app import Vtn, make_store  # noqa: E402
from vtn.config import Config, load_config  # noqa: E402
from vtn.transports.http import build_app  # noqa: E402

CENTRE = (52.52, 13.40)
REGION_KM = 100.0
CLASSES = [  # (class, type, weight, capacity range W)
    (DeviceClass.DHW, DeviceType.DEMAND, 25, (1500, 6000)),
    (DeviceClass.HVAC, DeviceType.DEMAND, 20, (2000, 12000)),
    (DeviceClass.PV, DeviceType.GENERATION, 20, (2000, 15000)),
    (DeviceClass.STORAGE, DeviceType.STORAGE, 10, (3000, 20000)),
    (DeviceClass.EV, DeviceType.DEMAND, 15, (3700, 22000)),
    (DeviceClass.LIGHTING, DeviceType.DEMAND, 5, (100, 2000)),
    (DeviceClass.OTHER, DeviceType.DEMAND, 5, (100, 5000)),
]
AGGREGATORS = [f"agg-{i:02d}" for i in range(20)]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def towns(rnd: random.Random, n: int = 60) -> list[tuple[float, float, float]]:
    """Town centres (lat, lon, spread km) inside the region; the centre is the big city."""
    out = [(CENTRE[0], CENTRE[1], 12.0)]
    for _ in range(n - 1):
        lat, lon = offset(rnd, REGION_KM)
        out.append((lat, lon, rnd.uniform(1.5, 5.0)))
    return out


def offset(rnd: random.Random, radius_km: float, centre: tuple[float, float] = CENTRE
           ) -> tuple[float, float]:
    r = radius_km * math.sqrt(rnd.random())
    a = rnd.uniform(0, 2 * math.pi)
    dlat = r * math.cos(a) / 111.32
    dlon = r * math.sin(a) / (111.32 * math.cos(math.radians(centre[0])))
    return centre[0] + dlat, centre[1] + dlon


def make_der(i: int, rnd: random.Random, town_list: list[tuple[float, float, float]]) -> Der:
    cls, typ, _, (lo, hi) = rnd.choices(CLASSES, weights=[c[2] for c in CLASSES])[0]
    if rnd.random() < 0.7:  # 70 % in towns, the rest spread over the countryside
        lat, lon, spread = rnd.choice(town_list)
        lat, lon = offset(rnd, spread, (lat, lon))
    else:
        lat, lon = offset(rnd, REGION_KM)
    cap = round(rnd.uniform(lo, hi), -1)
    account = i // 3
    return Der(
        device_id=f"der-{i:08d}",
        ven_id=f"ven-{account:07d}",
        resource_id=f"res-{i % 3}",
        device_name=f"{cls.value}-{i:08d}",
        account_id=f"acct-{account:07d}",
        aggregator_id=AGGREGATORS[account % len(AGGREGATORS)],
        device_class=cls,
        device_type=typ,
        availability=rnd.random() < 0.95,
        dr_availability=rnd.random() < 0.8,
        marketplace_availability=rnd.random() < 0.4,
        location=Location(lat=lat, lon=lon) if rnd.random() < 0.97 else None,
        max_capacity=cap,
        available_capacity=round(cap * rnd.random(), -1),
        liveness=rnd.choices(list(Liveness), weights=[80, 5, 15])[0],
        updated_at=NOW - timedelta(seconds=rnd.uniform(0, 30 * 86400)),
    )


async def generate(store: Store, n: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    town_list = towns(rnd)
    batch = 20_000 if isinstance(store, SqliteStore) else 5_000
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        ders = [make_der(i, rnd, town_list) for i in range(start, min(n, start + batch))]
        if isinstance(store, SqliteStore):
            await store.commit(Batch(ders=ders))
        else:
            await store.import_records("der", ders)  # type: ignore[attr-defined]
        print(f"\r  generated {start + len(ders):,} DERs", end="", file=sys.stderr)
    if isinstance(store, SqliteStore):
        store.db.execute("ANALYZE")
    print(f" in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


class NxServer:
    """nx-27017 on a free loopback port over a kept data directory (stopped at the end)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, wait_s: float = 30.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        cmd = [*_nx_command(), "--host", "127.0.0.1", "-p", str(port),
               "--data-dir", str(self.data_dir), "--log-file", str(self.data_dir / "nx.log"),
               "--pid-file", str(self.data_dir / "nx.pid")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"mongodb://127.0.0.1:{port}/"
        deadline = time.monotonic() + wait_s
        while not _ping(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"nx-27017 did not start: {' '.join(cmd)}")
            time.sleep(0.1)
        return self.url

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None


def filtered_queries(rnd: random.Random, k: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(k):
        cls, _, _, (cap_lo, cap_hi) = rnd.choice(CLASSES)
        cls = cls.value
        shape = rnd.randrange(5)
        if shape == 0:
            q = {"device_class": cls, "marketplace_availability": "true",
                 "sort": "-max_capacity"}
        elif shape == 1:
            q = {"aggregator_id": rnd.choice(AGGREGATORS), "device_class": cls,
                 "sort": "-max_capacity,device_name"}
        elif shape == 2:
            # a capacity window inside the class's range (a window nothing matches makes
            # this walk the whole class: see docs/benchmarks.md)
            low = rnd.uniform(cap_lo, (cap_lo + cap_hi) / 2)
            q = {"device_class": cls, "liveness": "online", "max_capacity_min": f"{low:.0f}",
                 "max_capacity_max": f"{low + (cap_hi - cap_lo) / 3:.0f}",
                 "sort": "-available_capacity"}
        elif shape == 3:
            q = {"device_class": cls, "dr_availability": "true", "availability": "true",
                 "sort": "-updated_at"}
        else:
            q = {"aggregator_id": rnd.choice(AGGREGATORS), "liveness": "online",
                 "sort": "device_name"}
        q["limit"] = "100"
        out.append(q)
    return out


def geo_queries(rnd: random.Random, k: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(k):
        lat, lon = offset(rnd, REGION_KM * 0.8)
        q = {"near": f"{lat:.5f},{lon:.5f}", "radius_m": "5000", "limit": "100"}
        if rnd.random() < 0.5:
            q["device_class"] = rnd.choice(CLASSES)[0].value
        if rnd.random() < 0.3:
            q["sort"] = "-max_capacity"
        out.append(q)
    return out


def pct(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, math.ceil(0.95 * len(s)) - 1)]


async def time_store(store: Store, queries: list[dict[str, Any]], scope: Scope
                     ) -> list[float]:
    out = []
    for q in queries:
        query = DiscoveryQuery.model_validate(q)
        t0 = time.perf_counter()
        page = await store.find_ders(query, scope)
        out.append((time.perf_counter() - t0) * 1000)
        assert page.items is not None
    return out


async def time_http(base: str, token: str, queries: list[dict[str, Any]]) -> list[float]:
    out = []
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        for q in queries:
            t0 = time.perf_counter()
            async with session.get(base + "/api/v1/ders", params=q, headers=headers) as r:
                body = await r.read()
                assert r.status == 200, body[:300]
            out.append((time.perf_counter() - t0) * 1000)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--store", choices=("sqlite", "mongo"), default="sqlite")
    ap.add_argument("--mongo-url", default=None,
                    help="a MongoDB server (default: start nx-27017 over --db)")
    ap.add_argument("--db", type=Path, default=None,
                    help="default /tmp/api-bench-N (SQLite) or /tmp/api-bench-mongo-N (nx)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--no-http", action="store_true", help="time the store only")
    ap.add_argument("--port", type=int, default=18089)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    nx: NxServer | None = None
    try:
        if args.store == "mongo":
            data_dir = args.db or Path(f"/tmp/api-bench-mongo-{args.n}")
            url = args.mongo_url
            if url is None:
                nx = NxServer(data_dir / "nx")
                url = nx.start()
            parts = urlsplit(url)  # database apibench<N>, keeping any ?replicaSet=...
            url = urlunsplit(parts._replace(path=f"/apibench{args.n}"))
            overrides: dict[str, object] = {"http.port": args.port, "store.url": url}
        else:
            data_dir = args.db or Path(f"/tmp/api-bench-{args.n}")
            overrides = {"http.port": args.port}
        await run(args, load_config(None, data_dir=data_dir, **overrides))
    finally:
        if nx is not None:
            nx.stop()


async def run(args: argparse.Namespace, config: Config) -> None:
    store = make_store(config)
    await store.open()
    have = await store.count_ders(SERVICE)
    if have != args.n:
        if have:
            raise SystemExit(f"{config.store.url or config.sqlite_path} holds {have} DERs; "
                             "use another --db")
        await generate(store, args.n)
    rnd = random.Random(42)
    sets = {"filtered + sorted, limit 100": filtered_queries(rnd, args.queries),
            "geo 5 km, limit 100": geo_queries(rnd, args.queries)}
    aggregator = Scope("aggregator", aggregator_id="agg-03")
    results: list[tuple[str, str, float, float]] = []
    for name, queries in sets.items():
        await time_store(store, queries[: args.warmup], SERVICE)  # warm the page cache
        for label, scope in (("store, service", SERVICE), ("store, aggregator", aggregator)):
            results.append((name, label, *pct(await time_store(store, queries, scope))))
    await store.close()
    if not args.no_http:
        await time_http_leg(args, config, sets, results)
    for name, label, p50, p95 in results:
        if args.markdown:
            print(f"| {args.n:,} | {name} | {label} | {p50:.1f} | {p95:.1f} |")
        else:
            print(json.dumps({"n": args.n, "store": args.store, "query": name, "via": label,
                              "p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}))


async def time_http_leg(args: argparse.Namespace, config: Config,
                        sets: dict[str, list[dict[str, Any]]],
                        results: list[tuple[str, str, float, float]]) -> None:
    vtn = Vtn(config, run_jobs=False)
    runner = web.AppRunner(build_app(vtn), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    try:
        base = f"http://127.0.0.1:{args.port}"
        token = issue_token(config, "service")
        for name, queries in sets.items():
            await time_http(base, token, queries[: args.warmup])
            results.append((name, "HTTP, service", *pct(await time_http(base, token, queries))))
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
