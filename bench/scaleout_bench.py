"""Scale-out: several VTN nodes on one store (issue #20).

    .venv/bin/python -m bench.scaleout_bench [--store mongo|sqlite] [--sweep-vens 3000]
                                             [--vens 200] [--duration 3] [--repeats 2]

Two measurements, each against its own baseline in the same run:

* **sweep work per node** with 1, 2 and 3 nodes: a mass transition (every VEN silent,
  as after an outage) swept by N JobRunners (vtn.leased_jobs, the code ``vtn serve``
  runs) on one store, ``[jobs] sweep_shards = 6``. Per node: VENs transitioned and
  seconds spent sweeping; the baseline is one node doing all of it. Each VEN must be
  transitioned exactly once in all (checked).
* **poll and update-report throughput** with 1 vs 3 ``vtn serve`` processes on one
  store (``--store mongo``: one nx-27017), 32 connections in all from bench/loadgen.py
  (one generator process; with 3 nodes its connections are split over the three ports,
  each VEN's messages always going to one node, VENs registered through node 0). Every
  reply is checked as in bench/http_bench.py. 1 and 3 nodes are interleaved.

Writes bench/results/scaleout.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # noqa: E402

from bench import loadgen  # noqa: E402
from bench.http_bench import (  # noqa: E402
    MESSAGES,
    OADR,
    Target,
    free_port,
    job_bodies,
    setup_vens,
    wait_up,
)
from registry.models import Liveness, Ven  # noqa: E402
from registry.port import Batch  # noqa: E402
from vtn import liveness  # noqa: E402
from vtn.app import make_store  # noqa: E402
from vtn.config import JobsConfig, load_config  # noqa: E402
from vtn.leased_jobs import JobRunner, LeasedJob  # noqa: E402
from vtn.services.base import Context  # noqa: E402

SHARDS = 6


# --- sweep work per node -------------------------------------------------------------


async def sweep_once(url: str, data: Path, nodes: int, vens: int) -> dict[str, Any]:
    config = load_config(None, data_dir=data, **{"store.url": url})
    now = datetime.now(UTC)
    stores = [make_store(config) for _ in range(nodes)]
    for s in stores:
        await s.open()
    try:
        silent = now - timedelta(seconds=3600)
        fleet = [Ven(ven_name=f"sw-{i:06d}", registered=True, liveness=Liveness.ONLINE,
                     last_seen=silent, poll_freq_s=10.0) for i in range(vens)]
        for i in range(0, vens, 1000):
            await stores[0].commit(Batch(vens=fleet[i : i + 1000]))
        runners = []
        for i, s in enumerate(stores):
            ctx = Context(store=s, config=config, clock=lambda: now)
            runners.append(JobRunner(ctx, AsyncIOScheduler(),
                                     JobsConfig(node_id=f"n{i}", lease_ttl_s=600)))
        for r in runners:
            await r.heartbeat()
        work: dict[int, list[float]] = {i: [0, 0.0] for i in range(nodes)}

        def recorder(i: int) -> Callable[[Context], Any]:
            async def job(ctx: Context) -> None:
                t0 = time.perf_counter()
                changes = await liveness.sweep(ctx)
                work[i][0] += len(changes)
                work[i][1] += time.perf_counter() - t0
            return job

        jobs = [LeasedJob("liveness.sweep", recorder(i), 5.0, SHARDS) for i in range(nodes)]
        t0 = time.perf_counter()
        await asyncio.gather(*(r.run(j) for r, j in zip(runners, jobs, strict=True)))
        wall = time.perf_counter() - t0
        total = sum(int(w[0]) for w in work.values())
        assert total == vens, (total, vens)  # every VEN once, none twice
        return {"nodes": nodes, "vens": vens, "wall_s": round(wall, 3),
                "per_node_vens": [int(work[i][0]) for i in range(nodes)],
                "per_node_s": [round(work[i][1], 3) for i in range(nodes)]}
    finally:
        for s in stores:
            await s.close()


def sweep_bench(store_url: Callable[[str], str], tmp: Path, vens: int) -> list[dict[str, Any]]:
    out = []
    for nodes in (1, 2, 3):
        res = asyncio.run(sweep_once(store_url(f"sweep{nodes}"), tmp / f"sweep{nodes}",
                                     nodes, vens))
        base = out[0] if out else res
        res["max_node_vens_vs_1"] = round(max(res["per_node_vens"]) / vens, 3)
        res["max_node_s_vs_1"] = round(max(res["per_node_s"]) / max(base["per_node_s"]), 3)
        out.append(res)
        print(f"sweep {nodes} node(s): per node {res['per_node_vens']} VENs, "
              f"{res['per_node_s']} s")
    return out


# --- poll / update throughput with 1 vs 3 nodes ------------------------------------------


def multi_worker(conn: Any) -> None:
    """Like loadgen.worker, but runs a list of jobs at once (one per node port)."""
    while True:
        jobs = conn.recv()
        if jobs is None:
            return

        async def all_of(js: list[loadgen.Job]) -> list[loadgen.Result]:
            return list(await asyncio.gather(*(loadgen.run_job(j) for j in js)))

        try:
            conn.send(asyncio.run(all_of(jobs)))
        except Exception as exc:
            conn.send(exc)


def node_target(tmp: Path, url: str, i: int) -> Target:
    port = free_port()
    d = tmp / f"node{i}"
    d.mkdir(exist_ok=True)
    cfg = d / "vtn.toml"
    cfg.write_text(textwrap.dedent(f"""
        data_dir = "{d / 'data'}"
        [store]
        url = "{url}"
        [http]
        port = {port}
        [registration]
        open_enrollment = true
    """))
    cmd = [sys.executable, "-c", "from vtn.cli import main; main()", "serve", "--config",
           str(cfg)]
    t = Target(f"node{i}", "ours", cmd, port)
    return t


def cpu_of(targets: list[Target]) -> float:
    return sum(t.cpu_seconds() for t in targets)


def measure(pipe: Any, nodes: list[Target], bodies_of: dict[str, list[bytes]], message: str,
            duration: float, run: int) -> dict[str, Any]:
    service, needles = MESSAGES[message]
    bodies = bodies_of[message]
    jobs, conns = [], 32
    for i, t in enumerate(nodes):
        share = conns // len(nodes) + (i < conns % len(nodes))
        jobs.append(loadgen.Job(host="127.0.0.1", port=t.port, path=f"{OADR}/{service}",
                                mode="cycle", bodies=bodies[i :: len(nodes)],
                                needles=needles, connections=share, duration=duration,
                                tag=f"{run:03x}{i}"))
    cpu0 = cpu_of(nodes)
    pipe.send(jobs)
    results = pipe.recv()
    if isinstance(results, Exception):
        raise results
    lat = sorted(x for r in results for x in r.latencies)
    return {"per_s": sum(r.replies for r in results) / duration,
            "p50_ms": 1000 * lat[len(lat) // 2] if lat else None,
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
            "errors": sum(r.errors for r in results),
            "error_kinds": {k: sum(r.error_kinds.get(k, 0) for r in results)
                            for r0 in results for k in r0.error_kinds},
            "decoded_ok": sum(r.decoded for r in results),
            "server_cpu_s": round(cpu_of(nodes) - cpu0, 2)}


def throughput_bench(url: str, tmp: Path, vens: int, duration: float, repeats: int
                     ) -> dict[str, Any]:
    nodes = [node_target(tmp, url, i) for i in range(3)]
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    gen = ctx.Process(target=multi_worker, args=(child,), daemon=True)
    gen.start()
    raw: dict[str, list[dict[str, Any]]] = {}
    try:
        nodes[0].start()
        asyncio.run(wait_up(nodes[0]))
        asyncio.run(setup_vens(nodes[0], vens))
        for t in nodes[1:]:
            t.vens = nodes[0].vens
        bodies = {msg: job_bodies(nodes[0], msg)[1] for msg in ("poll", "update")}
        run = 0
        for rep in range(repeats):
            order = (1, 3) if rep % 2 == 0 else (3, 1)
            for n in order:
                for t in nodes[1:]:
                    if n == 3 and t.proc is None:
                        t.start()
                    elif n == 1 and t.proc is not None:
                        t.stop()
                        t.proc = None
                for t in nodes[:n]:
                    asyncio.run(wait_up(t))
                for msg in ("poll", "update"):
                    run += 1
                    res = measure(parent, nodes[:n], bodies, msg, duration, run)
                    raw.setdefault(f"{msg} {n}n", []).append(res)
                    print(f"{msg:6s} {n} node(s): {res['per_s']:8.0f}/s  p50 "
                          f"{res['p50_ms'] or 0:.1f} ms  errors {res['errors']} "
                          f"{res['error_kinds']}", flush=True)
    finally:
        parent.send(None)
        gen.join(5)
        for t in nodes:
            t.stop()
    summary: dict[str, Any] = {}
    for key, runs in raw.items():
        summary[key] = {k: statistics.median(r[k] or 0 for r in runs)
                        for k in ("per_s", "p50_ms", "p99_ms", "server_cpu_s")}
        summary[key]["errors"] = sum(r["errors"] for r in runs)
    for msg in ("poll", "update"):
        one, three = summary.get(f"{msg} 1n"), summary.get(f"{msg} 3n")
        if one and three:
            summary[f"{msg} 3n/1n"] = round(three["per_s"] / one["per_s"], 3)
    return {"runs": raw, "summary": summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", choices=("mongo", "sqlite"), default="mongo")
    ap.add_argument("--sweep-vens", type=int, default=None,
                    help="VENs in the mass sweep (default 3000 SQLite, 600 nx-27017)")
    ap.add_argument("--vens", type=int, default=200, help="VENs for poll/update load")
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip", default="", help="sweep or throughput")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/scaleout.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scaleout-"))
    server = None
    try:
        if args.store == "mongo":
            from tests.mongo_server import MongoServer

            server = MongoServer().start()

            def url_of(name: str) -> str:
                return server.url(name)
        else:
            def url_of(name: str) -> str:
                return f"sqlite:///{tmp / (name + '.sqlite3')}"
        out: dict[str, Any] = {"store": args.store, "at": datetime.now(UTC).isoformat(),
                               "cpus": os.cpu_count(), "load_before": os.getloadavg()}
        if "sweep" not in args.skip:
            n = args.sweep_vens or (600 if args.store == "mongo" else 3000)
            out["sweep"] = sweep_bench(url_of, tmp, n)
        if "throughput" not in args.skip:
            out["throughput"] = throughput_bench(url_of("load"), tmp, args.vens,
                                                 args.duration, args.repeats)
            print(json.dumps(out["throughput"]["summary"], indent=1))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
        print(f"wrote {args.out}")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
