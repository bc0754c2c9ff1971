"""The seed's example query through the FLEXCoop resource vs /api/v1/ders, same run:
``python bench/flexcoop_bench.py --n 1000000`` (SQLite; the DERs of bench/api_bench.py,
generated into /tmp/api-bench-N unless already there).

"All domestic hot water devices near a location, available to the marketplace, sorted by
capacity, only device_id and max_capacity": K locations (as api_bench's geo queries, 5 km),
each asked as ``GET /api/flexcoop/devices?where=...&sort=[("max_capacity", -1)]&
projection=...`` (Eve's default max_results 25, with its ``_meta.total``) and as
``GET /api/v1/ders?device_class=dhwDevice&marketplace_availability=true&near=...&
radius_m=5000&sort=-max_capacity&fields=device_id,max_capacity&limit=25`` with
``total=true`` (the same work) and without it. The three are interleaved per location
(rotating order) so drift hits all alike; answers are checked to be the same DERs.
``--no-total`` serves the resource with ``[api] flexcoop_total = false`` (no count).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from bench.api_bench import REGION_KM, generate, offset, pct  # noqa: E402
from registry.api.auth import issue_token  # noqa: E402
from registry.port import SERVICE  # noqa: E402
from vtn.app import Vtn, make_store  # noqa: E402
from vtn.config import load_config  # noqa: E402
from vtn.transports.http import build_app  # noqa: E402


def pairs(rnd: random.Random, k: int, radius_m: int) -> list[tuple[dict[str, str], ...]]:
    out = []
    for _ in range(k):
        lat, lon = offset(rnd, REGION_KM * 0.8)
        where = {"device_class": "dhwDevice", "marketplace_availability": "yes",
                 "location": {"$near": {"$geometry": {"type": "Point", "coordinates": [lon, lat]},
                                        "$maxDistance": radius_m}}}
        eve = {"where": json.dumps(where), "sort": '[("max_capacity", -1)]',
               "projection": json.dumps({"device_id": 1, "max_capacity": 1})}
        v1 = {"device_class": "dhwDevice", "marketplace_availability": "true",
              "near": f"{lat},{lon}", "radius_m": str(radius_m), "sort": "-max_capacity",
              "fields": "device_id,max_capacity", "limit": "25"}
        out.append((eve, {**v1, "total": "true"}, v1))
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=None, help="default /tmp/api-bench-N")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--radius-m", type=int, default=5000)
    ap.add_argument("--port", type=int, default=18091)
    ap.add_argument("--no-total", action="store_true",
                    help="[api] flexcoop_total = false (Eve's OPTIMIZE_PAGINATION_FOR_SPEED)")
    args = ap.parse_args()
    config = load_config(None, data_dir=args.db or Path(f"/tmp/api-bench-{args.n}"),
                         **{"http.port": args.port, "api.flexcoop_total": not args.no_total})
    store = make_store(config)
    await store.open()
    have = await store.count_ders(SERVICE)
    if have != args.n:
        if have:
            raise SystemExit(f"{config.sqlite_path} holds {have} DERs; use another --db")
        await generate(store, args.n)
    await store.close()
    vtn = Vtn(config, run_jobs=False)
    runner = web.AppRunner(build_app(vtn), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    base = f"http://127.0.0.1:{args.port}/api"
    paths = ("/flexcoop/devices", "/v1/ders", "/v1/ders")
    labels = ("FLEXCoop devices, " + ("no _meta.total" if args.no_total else "_meta.total"),
              "/api/v1/ders, total=true",
              "/api/v1/ders")
    headers = {"Authorization": f"Bearer {issue_token(config, 'service')}"}
    samples: list[list[float]] = [[], [], []]
    rnd = random.Random(19)
    try:
        async with aiohttp.ClientSession() as session:
            for i, trio in enumerate(pairs(rnd, args.warmup + args.queries, args.radius_m)):
                ids: list[list[str]] = [[], [], []]
                totals: list[int] = [0, 0]
                for j in ((i + r) % 3 for r in range(3)):
                    t0 = time.perf_counter()
                    async with session.get(base + paths[j], params=trio[j],
                                           headers=headers) as r:
                        body: Any = await r.json()
                        assert r.status == 200, body
                    dt = (time.perf_counter() - t0) * 1000
                    items = body["_items"] if j == 0 else body["items"]
                    ids[j] = [d["device_id"] for d in items]
                    if j < 2 and not args.no_total:
                        totals[j] = body["_meta"]["total"] if j == 0 else body["total"]
                    if i >= args.warmup:
                        samples[j].append(dt)
                assert ids[0] == ids[1] == ids[2], "different answers"
                assert totals[0] == totals[1], "different totals"
    finally:
        await runner.cleanup()
    p = [pct(s) for s in samples]
    for label, (p50, p95) in zip(labels, p, strict=True):
        print(f"| {args.n:,} | {label} | {p50:.1f} | {p95:.1f} |")
    print(f"p95 FLEXCoop / v1 total=true: {p[0][1] / p[1][1]:.3f}; "
          f"/ v1 without total: {p[0][1] / p[2][1]:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
