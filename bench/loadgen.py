"""A small, fast HTTP/1.1 load generator for the HTTP benchmarks (bench/http_bench.py).

Raw asyncio protocols, one keep-alive connection per request in flight, pre-built
request bytes (no client library, no header parsing beyond status and Content-Length),
so that a load generator process costs the machine far less than the servers it
drives. Each process runs jobs it receives over a multiprocessing pipe, so the driver
can keep one or two generator processes alive for a whole benchmark run.

A job posts bodies to one URL path with ``connections`` connections: a warm-up phase
(not counted), then ``duration`` seconds in which every reply is timed and checked
(HTTP 200 and every ``needles`` byte string present). It returns the number of replies,
errors and the raw latencies; one reply per connection is also fully decoded with the
project's codec (XSD-validated) as a stronger check that the byte test is not fooled.
"""

from __future__ import annotations

import asyncio
import socket
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDER = b"@@UNIQUE-ID-@@@@"  # 16 bytes, replaced by a 16-byte unique id


@dataclass
class Job:
    host: str
    port: int
    path: str
    # "cycle": rotate through ``bodies``; "unique": ``bodies[0]`` holds PLACEHOLDER which
    # is replaced by a fresh fixed-width id for every request (new registrations)
    mode: str
    bodies: list[bytes]
    needles: list[bytes]
    connections: int
    duration: float
    warmup: float = 0.5
    tag: str = "a"  # makes unique ids distinct between processes and runs
    decode_check: bool = True


@dataclass
class Result:
    replies: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    latencies: array = field(default_factory=lambda: array("d"))
    cpu_s: float = 0.0  # this process's CPU time over the job (warm-up included)
    decoded: int = 0  # replies fully decoded with our codec and found OK
    decode_failures: list[str] = field(default_factory=list)


class _Run:
    def __init__(self, job: Job) -> None:
        self.job = job
        head = (
            f"POST {job.path} HTTP/1.1\r\nHost: {job.host}:{job.port}\r\n"
            "Content-Type: application/xml\r\nContent-Length: {n}\r\n\r\n"
        )
        if job.mode == "unique":
            body = job.bodies[0]
            assert body.count(PLACEHOLDER) == 1, "template needs exactly one placeholder"
            pre, post = body.split(PLACEHOLDER)
            self.pre = head.format(n=len(body)).encode() + pre
            self.post = post
            self.requests: list[bytes] = []
        else:
            self.requests = [head.format(n=len(b)).encode() + b for b in job.bodies]
        self.i = 0
        self.result = Result()
        self.t0 = self.t1 = 0.0
        self.open = 0
        self.finished = asyncio.get_running_loop().create_future()
        self.samples: list[bytes] = []

    def next_request(self) -> bytes:
        i = self.i
        self.i = i + 1
        if self.requests:
            return self.requests[i % len(self.requests)]
        uid = f"{self.job.tag[:4]:-<4}{i:012d}".encode()
        return self.pre + uid + self.post

    def error(self, kind: str) -> None:
        r = self.result
        r.errors += 1
        r.error_kinds[kind] = r.error_kinds.get(kind, 0) + 1

    def reply(self, conn: _Client, status: int, body: bytes, sent: float) -> None:
        now = time.perf_counter()
        if now >= self.t0:
            if now < self.t1:
                r = self.result
                r.replies += 1
                r.latencies.append(now - sent)
                if status != 200:
                    self.error(f"http {status}")
                elif not all(n in body for n in self.job.needles):
                    self.error("reply check")
                if not conn.sampled:
                    conn.sampled = True
                    self.samples.append(body)
        elif status != 200 or not all(n in body for n in self.job.needles):
            self.error("warm-up reply check")
        if now < self.t1:
            conn.send()
        else:
            conn.close()

    def closed(self, conn: _Client) -> None:
        self.open -= 1
        if self.open <= 0 and not self.finished.done():
            self.finished.set_result(None)


class _Client(asyncio.Protocol):
    def __init__(self, run: _Run) -> None:
        self.run = run
        self.buf = bytearray()
        self.need = -1
        self.status = 0
        self.sent = 0.0
        self.transport: asyncio.Transport | None = None
        self.sampled = False
        self.done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self) -> None:
        assert self.transport is not None
        self.sent = time.perf_counter()
        self.transport.write(self.run.next_request())

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            if self.need < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).lower()
                self.status = int(head[9:12])
                at = head.find(b"\r\ncontent-length:")
                if at < 0:
                    self.run.error("no content-length")
                    self.close()
                    return
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
                self.need = end + 4 + length
                self.body_at = end + 4
            if len(buf) < self.need:
                return
            body = bytes(buf[self.body_at : self.need])
            del buf[: self.need]
            self.need = -1
            self.run.reply(self, self.status, body, self.sent)
            if self.done:
                return

    def close(self) -> None:
        if not self.done:
            self.done = True
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done:
            self.done = True
            self.run.error("connection lost")
        self.run.closed(self)


async def run_job(job: Job) -> Result:
    loop = asyncio.get_running_loop()
    cpu0 = time.process_time()
    run = _Run(job)
    clients = []
    for _ in range(job.connections):
        _, client = await loop.create_connection(lambda: _Client(run), job.host, job.port)
        clients.append(client)
    run.open = len(clients)
    start = time.perf_counter()
    run.t0 = start + job.warmup
    run.t1 = run.t0 + job.duration
    for c in clients:
        c.send()
    await run.finished
    r = run.result
    r.seconds = job.duration
    r.cpu_s = time.process_time() - cpu0
    if job.decode_check:
        _decode_samples(run.samples, r)
    return r


def _decode_samples(samples: list[bytes], r: Result) -> None:
    from vtn.codec import decode
    from vtn.codec import messages as m

    for body in samples:
        try:
            msg = decode(body, validate=True)
        except Exception as exc:  # reported, not raised
            r.decode_failures.append(f"{type(exc).__name__}: {exc}"[:200])
            continue
        resp = getattr(msg, "response", None)
        if isinstance(resp, m.EiResponse) and resp.code == m.OK:
            r.decoded += 1
        else:
            r.decode_failures.append(f"not OK: {type(msg).__name__} {resp}"[:200])


def worker(conn: Any) -> None:
    """Loop: receive a Job, run it, send back the Result (None stops the worker)."""
    while True:
        job = conn.recv()
        if job is None:
            return
        try:
            conn.send(asyncio.run(run_job(job)))
        except Exception as exc:  # the driver reports it
            conn.send(exc)
