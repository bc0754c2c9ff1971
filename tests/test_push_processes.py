"""Two VTN processes on one store (SQLite file, or MongoDB with TEST_STORE=mongo) push
to the same push VENs: each VEN's queue is pushed by one process at a time, every
message arrives, and a process killed with -9 mid-delivery loses its leases to the other.

Each process pushes from its own loopback address ([push] local_address), so the VENs
can tell who delivered what.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.conftest import free_port
from tests.test_durability import env, send, vtn_cmd
from tests.test_interop_openleadr import eventually
from vtn.app import make_store
from vtn.codec import decode, encode, validate
from vtn.codec import messages as m
from vtn.config import Config
from vtn.services.registration import outbox

A, B = "127.0.0.2", "127.0.0.3"
LEASE_S = 3.0  # short, but well above a loaded CI machine's stalls


@dataclass
class Arrival:
    remote: str
    body: bytes
    start: float
    end: float = 0.0


@dataclass
class Vens:
    """Push VENs behind one socket; records who delivered what, and overlaps per VEN."""

    port: int = field(default_factory=free_port)
    arrivals: dict[str, list[Arrival]] = field(default_factory=lambda: defaultdict(list))
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_in_flight: int = 0
    hang_from: str | None = None  # requests from this address never get an answer
    hanging: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/ven/{name}", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def handle(self, request: web.Request) -> web.Response:
        name, body = request.match_info["name"], await request.read()
        validate(body)
        arrival = Arrival(request.remote or "", body, time.monotonic())
        self.arrivals[name].append(arrival)
        if self.hang_from is not None and request.remote == self.hang_from:
            self.hanging.add(name)  # (not counted in flight: its sender is about to die)
            await self.release.wait()
        self.in_flight[name] += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight[name])
        try:
            await asyncio.sleep(0.03)  # a VEN takes a moment: overlaps would show
            msg = decode(body)
            rid = getattr(msg, "request_id", "") or ""
            reply = m.Response(m.EiResponse(m.OK, "OK", rid), ven_id=name)
            return web.Response(body=encode(reply), content_type="application/xml")
        finally:
            self.in_flight[name] -= 1
            arrival.end = time.monotonic()


def toml(config: Config, store_url: str, port: int, local: str, data: Path) -> str:
    return f"""
vtn_id = "two-processes"
data_dir = "{data}"
[http]
port = {port}
[store]
url = "{store_url}"
[registration]
open_enrollment = true
[push]
allowed_schemes = ["http"]
allowed_cidrs = ["127.0.0.0/8"]
local_address = "{local}"
lease_s = {LEASE_S}
scan_interval_s = 0.05
backoff_initial_s = 0.1
backoff_max_s = 0.3
timeout_s = 30
"""


async def start_vtn(path: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(vtn_cmd("serve", "--config", str(path)), env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60  # a loaded CI machine imports slowly
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                async with s.get(f"http://127.0.0.1:{port}/health") as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("VTN did not start")


async def test_two_processes_push_each_ven_one_at_a_time_and_take_over_from_a_dead_one(
    config: Config, tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    store_url = config.store.url or f"sqlite:///{data / 'vtn.sqlite3'}"
    ports, procs = [free_port(), free_port()], []
    vens = Vens()
    await vens.start()
    names = [f"push-{i}" for i in range(8)]
    store = make_store(config)
    await store.open()
    try:
        paths = []
        for port, local in zip(ports, (A, B), strict=True):
            paths.append(tmp_path / f"vtn-{local}.toml")
            paths[-1].write_text(toml(config, store_url, port, local, data))
        procs.extend(await asyncio.gather(*(start_vtn(p, port)
                                            for p, port in zip(paths, ports, strict=True))))
        ven_ids = {}
        for name in names:
            reply = await send(ports[0], "EiRegisterParty", m.CreatePartyRegistration(
                request_id="r", ven_name=name, http_pull_model=False,
                transport_address=f"http://127.0.0.1:{vens.port}/ven/{name}"))
            assert isinstance(reply, m.CreatedPartyRegistration) and reply.ven_id
            ven_ids[name] = reply.ven_id
        vens_by_id = {v: await store.get_ven(v) for v in ven_ids.values()}
        from registry.port import Batch

        # five more messages each (oadrRequestReregistration), queued in one commit
        await store.commit(Batch(outbox=[
            outbox(ven, m.RequestReregistration(ven_id=ven.ven_id))  # type: ignore[arg-type]
            for ven in vens_by_id.values() for _ in range(5)]))

        async def all_delivered() -> bool:
            return all([await store.pending_count(v) == 0 for v in ven_ids.values()])
        await eventually(all_delivered, timeout=30)
        # every message once (oadrRegisterReport + 5), never two at a time to one VEN
        assert {n: len(vens.arrivals[n]) for n in names} == dict.fromkeys(names, 6)
        assert vens.max_in_flight == 1
        # (which process pushed which VEN here is not fixed: whoever scanned first took
        # its lease; the take-over below makes both of them deliver)
        for n in names:  # FIFO per VEN, whoever delivered
            kinds = [m.ELEMENT_NAMES[type(decode(a.body))] for a in vens.arrivals[n]]
            assert kinds == ["oadrRegisterReport"] + ["oadrRequestReregistration"] * 5

        # A's deliveries now hang; while A is alive (renewing its leases) B keeps off.
        # B is paused (SIGSTOP) until A holds a hanging delivery, so that A certainly
        # gets some VENs whichever process would have scanned first
        vens.hang_from = A
        os.kill(procs[1].pid, signal.SIGSTOP)
        try:
            await store.commit(Batch(outbox=[
                outbox(ven, m.RequestReregistration(ven_id=ven.ven_id))  # type: ignore[arg-type]
                for ven in vens_by_id.values()]))
            await eventually(lambda: _true(bool(vens.hanging)), timeout=30)
        finally:
            os.kill(procs[1].pid, signal.SIGCONT)
        await asyncio.sleep(1.5 * LEASE_S)
        stuck = set(vens.hanging)
        for n in stuck:
            assert [a.remote for a in vens.arrivals[n][6:]] == [A]  # B did not step in
            assert await store.pending_count(ven_ids[n]) == 1
        killed_at = time.monotonic()
        procs[0].kill()  # kill -9 in the middle of those deliveries
        procs[0].wait()
        await eventually(all_delivered, timeout=30)
        for n in stuck:
            late = vens.arrivals[n][6:]
            assert [a.remote for a in late] == [A, B]  # resent by B after the kill ...
            assert late[1].start >= killed_at
            assert late[1].body == late[0].body  # ... the same stored message
        for n in set(names) - stuck:
            assert len(vens.arrivals[n]) == 7
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        await store.close()
        vens.release.set()
        if vens.runner is not None:
            await vens.runner.cleanup()


async def _true(value: bool) -> bool:
    return value
