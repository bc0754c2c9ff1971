"""HTTP push vs pull on one VTN, same run (issue #17).

    .venv/bin/python -m bench.push_bench [--vens 1000] [--poll 10] [--messages 5]

Starts ``vtn serve`` (embedded SQLite in a fresh data dir, open enrollment, [push]
allowing loopback), then two ven-sim fleets in this process: ``--vens`` push VENs
(``--transport push``: one listening socket, one path per VEN) and ``--vens`` pull VENs
polling every ``--poll`` seconds.

1. Throughput: ``--messages`` stored messages per VEN (oadrCancelReport, answered with
   oadrCanceledReport in the push reply / on the next request for pull) are queued in
   one commit for every VEN; the time until every outbox is empty gives messages/s for
   push and for pull.
2. Event latency: one DR event targeting every VEN of both fleets is created; for each
   VEN the time from the event's creation to the VTN recording its answer
   (oadrCreatedEvent) - p50, p95 and the last VEN, push vs pull.

Writes bench/results/push.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_bench import free_port  # noqa: E402
from registry.event_manager import create_event  # noqa: E402
from registry.events import DrEvent  # noqa: E402
from registry.port import SERVICE, Batch  # noqa: E402
from registry.sqlite import SqliteStore  # noqa: E402
from ven_sim.fleet import FleetOptions, run_fleet  # noqa: E402
from vtn.codec import messages as m  # noqa: E402
from vtn.services.registration import outbox  # noqa: E402

CONFIG = """
vtn_id = "push-bench"
data_dir = "{data}"
[http]
port = {port}
[registration]
open_enrollment = true
poll_freq_s = {poll}
[reports]
status_granularity_s = 600
usage_granularity_s = 600
report_back_duration_s = 600
[push]
allowed_schemes = ["http"]
allowed_cidrs = ["127.0.0.0/8"]
"""


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def wait_health(port: int, proc: subprocess.Popen[bytes]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as s:
        for _ in range(1200):
            if proc.poll() is not None:
                raise RuntimeError("vtn serve exited")
            try:
                async with s.get(f"http://127.0.0.1:{port}/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("vtn serve did not start")


def pending(db: sqlite3.Connection, ven_ids: list[str]) -> int:
    marks = ",".join("?" * len(ven_ids))
    return db.execute(f"SELECT count(*) FROM outbox WHERE ven_id IN ({marks})",
                      ven_ids).fetchone()[0]


async def drain_time(db: sqlite3.Connection, groups: dict[str, list[str]], start: float,
                     within_s: float) -> dict[str, float]:
    done: dict[str, float] = {}
    while len(done) < len(groups) and time.perf_counter() - start < within_s:
        for name, ids in groups.items():
            if name not in done and pending(db, ids) == 0:
                done[name] = time.perf_counter() - start
        await asyncio.sleep(0.1)  # (the fleets share this process: watch lightly)
    return done


async def main(vens: int, poll: float, messages: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="push-bench-"))
    port = free_port()
    conf = tmp / "vtn.toml"
    conf.write_text(CONFIG.format(data=tmp / "data", port=port, poll=poll))
    cmd = [sys.executable, "-m", "vtn.cli", "serve", "--config", str(conf)]
    proc = subprocess.Popen(  # noqa: ASYNC220 (once, before the loop has work)
        cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = asyncio.Event()
    fleets = []
    try:
        await wait_health(port, proc)
        for transport in ("push", "pull"):
            options = FleetOptions(
                vtn=f"http://127.0.0.1:{port}", vens=vens, ders_per_ven=1, poll_s=poll,
                name_prefix=f"{transport}-", transport=transport, ramp_s=vens / 200,
                connections=64, timeout_s=30.0, scenario="steady")
            fleets.append(asyncio.create_task(run_fleet(options, stop)))
        store = SqliteStore(tmp / "data" / "vtn.sqlite3")
        await store.open()
        db = sqlite3.connect(tmp / "data" / "vtn.sqlite3")
        deadline = time.monotonic() + 60 + vens / 20
        while True:
            listed = [v for v in await store.list_vens(SERVICE) if v.registered]
            if len(listed) >= 2 * vens or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        groups = {t: [v.ven_id for v in listed if v.ven_name.startswith(t)]
                  for t in ("push", "pull")}
        print(f"registered: push {len(groups['push'])}, pull {len(groups['pull'])}",
              file=sys.stderr)
        # let registration traffic settle (RegisterReport pushes, first polls)
        await drain_time(db, groups, time.perf_counter(), 60)
        await asyncio.sleep(poll)

        # 1. throughput
        by_id = {v.ven_id: v for v in listed}
        batch = Batch(outbox=[
            outbox(by_id[v], m.CancelReport(request_id=f"bench-{v}-{i}",
                                            report_request_ids=["bench-none"],
                                            report_to_follow=False, ven_id=v))
            for ids in groups.values() for v in ids for i in range(messages)])
        start = time.perf_counter()
        await store.commit(batch)
        drained = await drain_time(db, groups, start, 10 * poll + 120)
        throughput = {t: {"messages": len(ids) * messages, "seconds": round(drained[t], 3),
                          "per_s": round(len(ids) * messages / drained[t], 1)}
                      for t, ids in groups.items() if t in drained}
        print("throughput", throughput, file=sys.stderr)
        await asyncio.sleep(1)

        # 2. event creation -> the VTN has the VEN's answer
        now = datetime.now(UTC)
        event = DrEvent(program="http://dr.example/bench", dtstart=now + timedelta(hours=1),
                        duration_s=3600,
                        signals=[{"signal_name": "SIMPLE", "signal_type": "level",
                                  "intervals": [{"duration_s": 3600, "value": 1}]}],
                        targets={"ven_ids": groups["push"] + groups["pull"]})
        start = time.perf_counter()
        created, _ = await create_event(store, event, SERVICE, actor="bench", now=now)
        seen: dict[str, float] = {}
        group_of = {v: t for t, ids in groups.items() for v in ids}
        limit = start + 3 * poll + 60
        while len(seen) < len(group_of) and time.perf_counter() < limit:
            for d in await store.deliveries_of_event(created.event_id, SERVICE):
                if d.opt is not None and d.ven_id not in seen:
                    seen[d.ven_id] = time.perf_counter() - start
            await asyncio.sleep(0.25)  # resolution of the figures; reading costs CPU here
        latency: dict[str, Any] = {}
        for t, ids in groups.items():
            xs = [seen[v] for v in ids if v in seen]
            latency[t] = {"answered": len(xs), "of": len(ids),
                          "p50_s": round(quantile(xs, 0.5), 3),
                          "p95_s": round(quantile(xs, 0.95), 3),
                          "last_s": round(max(xs), 3) if xs else None}
        print("latency", latency, file=sys.stderr)
        await store.close()
        db.close()
    finally:
        stop.set()
        results = await asyncio.gather(*fleets, return_exceptions=True)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    fleet_errors = {t: (r.to_dict()["errors"] if not isinstance(r, BaseException) else str(r))
                    for t, r in zip(("push", "pull"), results, strict=True)}
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load": os.getloadavg()},
        "vens_per_transport": vens, "poll_s": poll, "messages_per_ven": messages,
        "throughput": throughput, "event_latency": latency, "fleet_errors": fleet_errors,
        "push_vs_pull": {
            "throughput_ratio": round(throughput["push"]["per_s"] / throughput["pull"]["per_s"],
                                      2) if len(throughput) == 2 else None,
            "last_answer_ratio": round(latency["pull"]["last_s"] / latency["push"]["last_s"], 2)
            if latency["push"]["last_s"] and latency["pull"]["last_s"] else None,
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vens", type=int, default=1000)
    parser.add_argument("--poll", type=float, default=10.0)
    parser.add_argument("--messages", type=int, default=5)
    args = parser.parse_args()
    out = asyncio.run(main(args.vens, args.poll, args.messages))
    path = ROOT / "bench" / "results" / "push.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
