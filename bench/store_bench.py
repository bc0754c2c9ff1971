"""Store backends side by side: SQLite vs MongoDB (nx-27017), one command.

    python bench/store_bench.py [--ders 100000] [--n 2000] [--mongo-uri URI]

(a) Engine.handle throughput (in-process, no HTTP) for oadrCreatePartyRegistration,
    oadrUpdateReport (4 points) and oadrPoll on each store.
(b) Export and import of N DERs: SQLite -> file -> MongoDB and back, DERs generated
    directly with store.commit(Batch).
Starts nx-27017 on a free loopback port unless --mongo-uri (or TEST_MONGO_URI) is given.
Writes bench/results/store.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from registry.models import Der, DeviceClass, Location, Ven  # noqa: E402
from registry.mongo import MongoStore  # noqa: E402
from registry.port import SERVICE, Batch, Store  # noqa: E402
from registry.sqlite import SqliteStore  # noqa: E402
from registry.transfer import export_store, import_store  # noqa: E402
from tests.mongo_server import MongoServer  # noqa: E402
from tests.oadr import call, metadata, register, update  # noqa: E402
from vtn.app import Vtn  # noqa: E402
from vtn.codec import encode  # noqa: E402
from vtn.codec import messages as m  # noqa: E402
from vtn.config import Config, load_config  # noqa: E402


async def rate(fn: Callable[[int], Awaitable[Any]], n: int) -> float:
    """Messages per second (best of two runs, after the first warmed caches)."""
    best = 0.0
    for _ in range(2):
        t = time.perf_counter()
        for i in range(n):
            await fn(i)
        best = max(best, n / (time.perf_counter() - t))
    return best


async def engine_rates(cfg: Config, n: int) -> dict[str, float]:
    cfg.registration.open_enrollment = True
    vtn = Vtn(cfg, run_jobs=False)
    await vtn.start()
    try:
        ven_id = (await register(vtn)).ven_id or ""
        rep = await call(vtn, "EiReport", metadata(ven_id, {f"r{i}": "PV" for i in range(4)}))
        assert isinstance(rep, m.RegisteredReport)
        await call(vtn, "OadrPoll", m.Poll(ven_id=ven_id))
        rr = next(r.report_request_id for r in rep.report_requests
                  if r.report_specifier_id == "usage-spec")
        poll = encode(m.Poll(ven_id=ven_id))
        points = [m.ReportPayload(r_id=f"r{i}-power", value=float(i)) for i in range(4)]
        upd = encode(update(ven_id, rr, "usage-spec", points))
        stamp = time.time_ns()

        def registration(i: int) -> bytes:
            name = f"bench-{stamp}-{i}-{time.perf_counter_ns()}"
            return encode(m.CreatePartyRegistration(request_id=f"r{i}", ven_name=name))

        return {
            "oadrCreatePartyRegistration_per_s": round(await rate(
                lambda i: vtn.engine.handle("EiRegisterParty", registration(i)), n // 4)),
            "oadrUpdateReport_4_points_per_s": round(await rate(
                lambda i: vtn.engine.handle("EiReport", upd), n // 2)),
            "oadrPoll_empty_per_s": round(await rate(
                lambda i: vtn.engine.handle("OadrPoll", poll), n)),
        }
    finally:
        await vtn.stop()


async def generate(store: Store, n: int, per_ven: int = 100) -> None:
    """n DERs on n/per_ven VENs, committed in batches of one VEN each."""
    classes = list(DeviceClass)
    for v in range(max(n // per_ven, 1)):
        ven = Ven(ven_name=f"gen-{v}", registered=True, aggregator_id=f"agg{v % 10}")
        ders = [Der(ven_id=ven.ven_id, resource_id=f"r{j}", device_name=f"dev {j}",
                    device_class=classes[j % len(classes)], max_capacity=float(j * 100),
                    location=Location(lat=40 + (v % 100) / 10, lon=(j % 180) - 90))
                for j in range(min(per_ven, n - v * per_ven))]
        await store.commit(Batch(vens=[ven], ders=ders))


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    t = time.perf_counter()
    await action()
    return round(time.perf_counter() - t, 2)


async def transfer(sqlite_path: Path, mongo_url: str, n: int, work: Path) -> dict[str, Any]:
    src, mongo = SqliteStore(sqlite_path), MongoStore(mongo_url)
    back = SqliteStore(work / "back.sqlite3")
    for s in (src, mongo, back):
        await s.open()
    dump, dump2 = work / "dump.jsonl", work / "dump2.jsonl"
    try:
        out: dict[str, Any] = {"ders": n}
        out["generate_sqlite_s"] = await timed(lambda: generate(src, n))

        async def export(store: Store, path: Path) -> None:
            with path.open("w") as f:
                await export_store(store, f)

        async def load(store: Store, path: Path) -> None:
            with path.open() as f:
                await import_store(store, f)

        out["export_sqlite_s"] = await timed(lambda: export(src, dump))
        out["dump_mb"] = round(dump.stat().st_size / 1e6, 1)
        out["import_mongo_s"] = await timed(lambda: load(mongo, dump))
        out["reimport_mongo_s"] = await timed(lambda: load(mongo, dump))
        out["export_mongo_s"] = await timed(lambda: export(mongo, dump2))
        out["import_sqlite_s"] = await timed(lambda: load(back, dump2))
        out["round_trip_identical"] = dump.read_text() == dump2.read_text()
        out["count_mongo"] = await mongo.count_ders(SERVICE)
        return out
    finally:
        for s in (src, mongo, back):
            await s.close()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    server = MongoServer()
    if args.mongo_uri:
        server.external = args.mongo_uri
    server.start()
    work = Path(tempfile.mkdtemp(prefix="store-bench-"))
    try:
        results: dict[str, Any] = {"backend_mongo": "external" if server.external else "nx-27017"}
        sqlite_cfg = load_config(None, data_dir=work / "sqlite")
        mongo_cfg = load_config(None, data_dir=work / "mongo", **{"store.url": server.url("eng")})
        results["engine"] = {
            "sqlite": await engine_rates(sqlite_cfg, args.n),
            "mongo": await engine_rates(mongo_cfg, args.n),
        }
        print(json.dumps(results["engine"], indent=2), flush=True)
        results["transfer"] = await transfer(work / "src.sqlite3", server.url("xfer"), args.ders,
                                             work)
        return results
    finally:
        server.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ders", type=int, default=100_000)
    ap.add_argument("--n", type=int, default=2000, help="messages per engine case")
    ap.add_argument("--mongo-uri", default=None, help="a real MongoDB instead of nx-27017")
    results = asyncio.run(main(ap.parse_args()))
    path = Path(__file__).with_name("results") / "store.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
