"""DR events to XMPP VENs through a real Prosody, against pull VENs in the same run.

    python bench/xmpp_bench.py [--vens 1000] [--pull-vens 1000] [--pull-poll 10] [--rounds 3]

A real ``vtn serve`` process (SQLite, jobs on, [xmpp] enabled), a throw-away Prosody
(tests/xmpp_server.py) with every VEN account pre-seeded, and in this process two
ven-sim fleets: ``--vens`` XMPP VENs (one XMPP session each) and ``--pull-vens`` HTTP
pull VENs polling every ``--pull-poll`` seconds. Each round creates one DR event through
the API targeting every VEN of both fleets and measures, per transport:

- delivered: event creation -> the last VEN of that fleet received the distribute
  (an XMPP VEN acknowledges it with the IQ result at that moment); messages/s = VENs /
  that time (for XMPP: the fan-out rate through Prosody; for pull: bounded by the poll);
- answered (XMPP): creation -> the VTN's reply to the last VEN's oadrCreatedEvent
  arrived, i.e. the answer is recorded (counted as oadrResponse replies; pull VENs'
  empty poll replies are oadrResponse too, so for pull this mark is not meaningful);
- confirmed through the API: every delivery of the event has opt_mod == 0.

Writes bench/results/xmpp.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from registry.api.auth import issue_token  # noqa: E402
from tests.xmpp_server import ProsodyServer, prosody_path  # noqa: E402
from ven_sim.fleet import FleetOptions, run_fleet  # noqa: E402
from ven_sim.stats import Stats  # noqa: E402
from ven_sim.xmpp_fleet import XmppOptions, run_xmpp_fleet  # noqa: E402
from vtn.config import load_config  # noqa: E402

VTN_JID = "vtn@localhost/openadr"
VEN_PASSWORD = "bench-ven"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, port: int, prosody: ProsodyServer, secret: str) -> None:
    path.write_text(f"""
[http]
port = {port}
[registration]
open_enrollment = true
poll_freq_s = 10
[api]
jwt_secret = "{secret}"
[xmpp]
enabled = true
jid = "{VTN_JID}"
password = "vtn-bench"
server_host = "127.0.0.1"
server_port = {prosody.port}
tls = "none"
ack_timeout_s = 30
""")


class Watch:
    """Samples a fleet's counters every few ms and notes when 50 %, 90 % and all of its
    VENs had received the event (``delivered``) and had their answer taken by the VTN
    (``answered``: the oadrCreatedEvent's reply arrived)."""

    MARKS = (0.5, 0.9, 1.0)

    def __init__(self, stats: Stats, vens: int) -> None:
        self.stats, self.vens = stats, vens
        self.events0 = self.answers0 = 0
        self.delivered: dict[float, float] = {}
        self.answered: dict[float, float] = {}

    def arm(self) -> None:
        self.events0 = self.stats.events_received
        self.answers0 = self.stats.received["oadrResponse"]
        self.delivered, self.answered = {}, {}

    def sample(self, now: float) -> bool:
        s = self.stats
        got = s.events_received - self.events0
        # each VEN's oadrCreatedEvent is answered with an oadrResponse
        done = s.received["oadrResponse"] - self.answers0
        for mark in self.MARKS:
            if mark not in self.delivered and got >= mark * self.vens:
                self.delivered[mark] = now
            if mark not in self.answered and done >= mark * self.vens:
                self.answered[mark] = now
        return 1.0 in self.delivered and 1.0 in self.answered


async def wait_registered(stats: Stats, vens: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while stats.vens_registered < vens:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {stats.vens_registered}/{vens} VENs registered")
        await asyncio.sleep(0.2)


class Setup:
    """Prosody with every account, and a ``vtn serve`` process (started before the loop)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="xmpp-bench-"))
        self.prosody = ProsodyServer(log_level="error")
        self.prosody.add_account("vtn", "vtn-bench")
        for i in range(args.vens):
            self.prosody.add_account(f"xmpp-{i + 1:05d}", VEN_PASSWORD)
        self.prosody.start()
        self.port = free_port()
        cfg_path = self.tmp / "vtn.toml"
        write_config(cfg_path, self.port, self.prosody, secrets.token_hex(16))
        self.log = open(self.tmp / "vtn.log", "wb")  # noqa: SIM115 - closed in stop()
        self.vtn = subprocess.Popen(
            [sys.executable, "-m", "vtn.cli", "serve", "--config", str(cfg_path),
             "--data-dir", str(self.tmp / "data")],
            stdout=subprocess.DEVNULL, stderr=self.log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=Path(__file__).resolve().parents[1])
        self.config = load_config(cfg_path, data_dir=self.tmp / "data")

    def stop(self) -> None:
        self.vtn.terminate()
        try:
            self.vtn.wait(20)
        except subprocess.TimeoutExpired:
            self.vtn.kill()
        self.log.close()
        self.prosody.cleanup()


async def bench(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    prosody, port, config = setup.prosody, setup.port, setup.config
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {issue_token(config, 'service')}"}
    stop = asyncio.Event()
    xstats_box: list[Stats] = []
    pstats_box: list[Stats] = []
    rounds: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(base + "/health") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            xopts = FleetOptions(vtn=base, vens=args.vens, name_prefix="xmpp-", report_s=60,
                                 ramp_s=2, connections=64, timeout_s=30)
            popts = FleetOptions(vtn=base, vens=args.pull_vens, name_prefix="pull-",
                                 poll_s=args.pull_poll, report_s=60, ramp_s=args.pull_poll,
                                 connections=64, timeout_s=30)
            xmpp = XmppOptions(vtn_jid=VTN_JID, server=("127.0.0.1", prosody.port),
                               domain=prosody.domain, password=VEN_PASSWORD, tls="none")

            def ticks(box: list[Stats]):  # type: ignore[no-untyped-def]
                def on_tick(s: Stats) -> None:
                    if not box:
                        box.append(s)
                return on_tick

            t0 = time.monotonic()
            xtask = asyncio.create_task(run_xmpp_fleet(xopts, xmpp, stop, ticks(xstats_box)))
            ptask = (asyncio.create_task(run_fleet(popts, stop, ticks(pstats_box)))
                     if args.pull_vens else None)
            while not xstats_box or (ptask is not None and not pstats_box):
                if xtask.done():
                    xtask.result()
                await asyncio.sleep(0.1)
            xstats = xstats_box[0]
            await wait_registered(xstats, args.vens, 900)
            connect_s = time.monotonic() - t0
            pstats = pstats_box[0] if pstats_box else None
            if pstats is not None:
                await wait_registered(pstats, args.pull_vens, 900)
            await asyncio.sleep(3)  # registration traffic (report registrations) settles
            async with http.get(base + "/api/v1/vens?limit=5000", headers=auth) as r:
                ven_ids = [v["ven_id"] for v in (await r.json())["items"]]
            for n in range(args.rounds):
                watches = {"xmpp": Watch(xstats, args.vens)}
                if pstats is not None:
                    watches["pull"] = Watch(pstats, args.pull_vens)
                for w in watches.values():
                    w.arm()
                event_id = f"bench-{n}-{time.time_ns()}"
                start = datetime.now(UTC) + timedelta(minutes=5)
                created = time.monotonic()
                async with http.post(base + "/api/v1/events", headers=auth, json={
                    "event_id": event_id, "program": "bench", "dtstart": start.isoformat(),
                    "signals": [{"signal_name": "SIMPLE", "signal_type": "level",
                                 "intervals": [{"duration_s": 600, "value": 1}]}],
                    "targets": {"ven_ids": ven_ids}}) as r:
                    assert r.status == 201, await r.text()
                api_s = time.monotonic() - created
                limit = created + args.pull_poll * 3 + 60
                while not all([w.sample(time.monotonic()) for w in watches.values()]):
                    if time.monotonic() > limit:
                        break
                    await asyncio.sleep(0.005)
                confirmed = False
                for _ in range(100):
                    async with http.get(f"{base}/api/v1/events/{event_id}?deliveries=100000",
                                        headers=auth) as r:
                        doc = await r.json()
                    if (len(doc["deliveries"]) == len(ven_ids)
                            and all(d["opt_mod"] == 0 for d in doc["deliveries"])):
                        confirmed = True
                        break
                    await asyncio.sleep(0.2)
                result: dict[str, Any] = {"round": n, "create_api_s": round(api_s, 3),
                                          "recorded_by_vtn": confirmed}
                for name, w in watches.items():
                    def rel(marks: dict[float, float],
                            created: float = created) -> dict[str, float | None]:
                        return {f"p{int(k * 100)}": (round(marks[k] - created, 3)
                                                     if k in marks else None)
                                for k in Watch.MARKS}

                    last = w.delivered.get(1.0)
                    result[name] = {
                        "vens": w.vens, "delivered_s": rel(w.delivered),
                        "answered_s": rel(w.answered),
                        "delivered_per_s": (round(w.vens / (last - created), 1)
                                            if last else None),
                    }
                rounds.append(result)
                print(json.dumps(result), flush=True)
            stop.set()
            xfinal = await xtask
            pfinal = await ptask if ptask is not None else None
    finally:
        stop.set()
    return {
        "vens_xmpp": args.vens, "vens_pull": args.pull_vens, "pull_poll_s": args.pull_poll,
        "xmpp_login_s": round(connect_s, 1), "rounds": rounds,
        "xmpp_errors": dict(xfinal.errors), "pull_errors": dict(pfinal.errors) if pfinal else {},
        "xmpp_memory_mb": xfinal.memory_mb,
        "cores": os.cpu_count(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vens", type=int, default=1000)
    p.add_argument("--pull-vens", type=int, default=1000)
    p.add_argument("--pull-poll", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if prosody_path() is None:
        raise SystemExit("prosody is not installed (apt-get install -y prosody)")
    setup = Setup(args)
    try:
        result = asyncio.run(bench(args, setup))
    finally:
        setup.stop()
    out = Path(__file__).resolve().parent / "results" / "xmpp.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
