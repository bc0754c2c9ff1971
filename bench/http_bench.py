"""OpenADR over HTTP: throughput and latency of our VTN vs openleadr vs a trivial handler.

    .venv/bin/python -m bench.http_bench [--duration 3] [--repeats 3] [--vens 500]

Targets, all started as subprocesses on loopback and kept running for the whole run:

* ``oadr-vtn 1w`` / ``oadr-vtn 2w``: ``vtn serve --workers 1|2`` (SO_REUSEPORT for 2), the
  embedded SQLite store with its default durability (WAL, synchronous=NORMAL, every
  acknowledged write committed), background liveness jobs on, open enrollment on;
* ``oadr-vtn 1w aiohttp``: 1 worker with ``http.fast_path = false`` (every request through
  aiohttp's request objects), to show what the OpenADR fast path (lean_http) buys;
* ``openleadr``: openleadr 0.5.36's ``OpenADRServer`` (bench/openleadr_server.py);
* ``trivial 1p`` / ``trivial 2p``: an aiohttp handler that reads the body and returns a
  fixed reply (bench/trivial_server.py): the machine's ceiling for aiohttp.

Messages (real 2.0b XML built with vtn.codec), over ``--vens`` VENs registered
beforehand through the protocol (oadrCreatePartyRegistration, METADATA with 4 DERs,
oadrCreatedReport, outbox drained):

* ``poll``: oadrPoll with nothing queued (reply: empty oadrResponse);
* ``update``: oadrUpdateReport carrying TELEMETRY_STATUS (4 DERs) and TELEMETRY_USAGE
  (4 points), one interval each: what an OSB with 4 DERs sends per report period;
* ``register``: oadrCreatePartyRegistration of a new VEN (unique oadrVenName each).

The same load generator (bench/loadgen.py: raw asyncio protocols, keep-alive, in its
own process) drives every target with 1 and 32 connections, one request in flight per
connection. Every reply is checked (HTTP 200, the expected element, responseCode 200)
and one per connection is decoded and XSD-validated with vtn.codec; errors are counted.
Targets are interleaved (order rotated every repeat) and each figure is the median of
``--repeats`` runs of ``--duration`` seconds after a 0.5 s warm-up. Server CPU time per
request is read from /proc. Writes bench/results/http.json and docs/images/http_*.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench import loadgen  # noqa: E402
from vtn.codec import decode, encode  # noqa: E402
from vtn.codec import messages as m  # noqa: E402

OADR = "/OpenADR2/Simple/2.0b"
XML = {"Content-Type": "application/xml"}
CODE_OK = b"<ei:responseCode>200</ei:responseCode>"
MESSAGES = {  # name -> (service, needles in every good reply)
    "poll": ("OadrPoll", [CODE_OK, b":oadrResponse "]),
    "update": ("EiReport", [CODE_OK, b":oadrUpdatedReport "]),
    "register": ("EiRegisterParty", [CODE_OK, b":oadrCreatedPartyRegistration ", b"venID>"]),
}
LABELS = {
    "poll": "oadrPoll (empty)",
    "update": "oadrUpdateReport (status + 4 usage points)",
    "register": "oadrCreatePartyRegistration (new VEN)",
}
RESOURCES = ["dhw", "pv", "battery", "ev"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- targets ------------------------------------------------------------------------


class Target:
    def __init__(self, name: str, kind: str, cmd: list[str], port: int,
                 root: Path = ROOT) -> None:
        self.name, self.kind, self.cmd, self.port, self.root = name, kind, cmd, port, root
        self.proc: subprocess.Popen[bytes] | None = None
        self.vens: list[tuple[str, str, str]] = []  # (venID, status rrID, usage rrID)
        self.quiet = True

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(self.root)}
        self.proc = subprocess.Popen(  # cwd: `python -c` puts it first on sys.path
            self.cmd, env=env, cwd=self.root, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if self.quiet else None,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def pids(self) -> list[int]:
        """The server process and its children (the workers)."""
        assert self.proc is not None
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            todo.extend(int(c) for c in children)
        return out

    def cpu_seconds(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total


def make_targets(tmp: Path, baseline: Path | None = None) -> list[Target]:
    py = sys.executable
    targets = []
    ours = [("oadr-vtn 1w", 1, True, ROOT), ("oadr-vtn 2w", 2, True, ROOT),
            ("oadr-vtn 1w aiohttp", 1, False, ROOT)]
    if baseline is not None:  # A/B: another checkout's code, with its own venv
        ours.append(("oadr-vtn 1w baseline", 1, True, baseline))
    for name, workers, fast, root in ours:
        port = free_port()
        d = tmp / name.replace(" ", "-")
        d.mkdir()
        cfg = d / "vtn.toml"
        cfg.write_text(textwrap.dedent(f"""
            data_dir = "{d / 'data'}"
            [http]
            port = {port}
            workers = {workers}
            fast_path = {str(fast).lower()}
            [registration]
            open_enrollment = true
        """))
        python = py if root == ROOT else str(root / ".venv/bin/python")
        cmd = [python, "-c", "from vtn.cli import main; main()", "serve", "--config", str(cfg)]
        targets.append(Target(name, "ours", cmd, port, root))
    port = free_port()
    targets.append(Target("openleadr", "openleadr",
                          [py, str(ROOT / "bench/openleadr_server.py"), "--port", str(port)], port))
    for workers in (1, 2):
        port = free_port()
        targets.append(Target(
            f"trivial {workers}p", "trivial",
            [py, str(ROOT / "bench/trivial_server.py"), "--port", str(port),
             "--workers", str(workers)], port,
        ))
    return targets


async def wait_up(t: Target) -> None:
    url = f"http://127.0.0.1:{t.port}{OADR}/OadrPoll"
    body = encode(m.Poll(ven_id="nobody"))
    for _ in range(300):
        assert t.proc is not None
        if t.proc.poll() is not None:
            raise RuntimeError(f"{t.name} exited")
        try:
            async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=XML) as r:
                await r.read()
                return
        except aiohttp.ClientError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{t.name} did not come up")


# --- VENs and messages ----------------------------------------------------------------


def metadata(ven_id: str) -> m.RegisterReport:
    from datetime import timedelta

    now = datetime.now(UTC)
    rate = m.SamplingRate(timedelta(seconds=10), timedelta(minutes=5))

    def desc(res: str, status: bool) -> m.ReportDescription:
        return m.ReportDescription(
            r_id=f"{res}-{'status' if status else 'power'}",
            report_type="x-resourceStatus" if status else "usage",
            reading_type="x-notApplicable" if status else "Direct Read",
            resource_id=res,
            item=None if status else m.ItemBase("powerReal", "RealPower", "W", "none"),
            sampling_rate=rate,
            location=(52.5, 13.4) if status else None,
        )

    return m.RegisterReport(
        request_id="meta-1",
        ven_id=ven_id,
        reports=[
            m.Report(report_specifier_id="status-spec",
                     report_name="METADATA_TELEMETRY_STATUS", created_date_time=now,
                     descriptions=[desc(r, True) for r in RESOURCES]),
            m.Report(report_specifier_id="usage-spec",
                     report_name="METADATA_TELEMETRY_USAGE", created_date_time=now,
                     descriptions=[desc(r, False) for r in RESOURCES]),
        ],
    )


def update_report(ven_id: str, rr_status: str, rr_usage: str) -> m.UpdateReport:
    now = datetime.now(UTC).replace(microsecond=0)
    status = [
        m.ReportPayload(
            r_id=f"{r}-status",
            status=m.ResourceStatus(
                online=True, manual_override=False,
                load_control={"capacity": m.LoadControlValue(current=1.5, max=3.0)},
            ),
        )
        for r in RESOURCES
    ]
    usage = [m.ReportPayload(r_id=f"{r}-power", value=1000.0 + i) for i, r in enumerate(RESOURCES)]
    return m.UpdateReport(
        request_id="upd-1",
        ven_id=ven_id,
        reports=[
            m.Report(report_specifier_id=spec, report_name=name, created_date_time=now,
                     report_request_id=rr, dtstart=now,
                     intervals=[m.ReportInterval(payloads=payloads, dtstart=now)])
            for spec, name, rr, payloads in (
                ("status-spec", "TELEMETRY_STATUS", rr_status, status),
                ("usage-spec", "TELEMETRY_USAGE", rr_usage, usage),
            )
        ],
    )


async def setup_vens(t: Target, n: int) -> None:
    """Register ``n`` VENs through the protocol and check every answer."""
    if t.kind == "trivial":
        t.vens = [(f"trivial-{i}", "rr-s", "rr-u") for i in range(n)]
        return
    base = f"http://127.0.0.1:{t.port}{OADR}"
    sem = asyncio.Semaphore(8)

    async def post(s: aiohttp.ClientSession, service: str, msg: m.Message) -> m.Message | None:
        async with s.post(f"{base}/{service}", data=encode(msg), headers=XML) as r:
            assert r.status == 200, (t.name, service, r.status)
            body = await r.read()
        return decode(body) if body else None  # openleadr answers oadrResponse with nothing

    def ok(reply: m.Message | None) -> Any:
        resp = getattr(reply, "response", None)
        assert isinstance(resp, m.EiResponse) and resp.code == 200, (t.name, reply)
        return reply

    async def one(s: aiohttp.ClientSession, i: int) -> tuple[str, str, str]:
        async with sem:
            name = f"setup-{i:05d}"
            reg = ok(await post(s, "EiRegisterParty",
                                m.CreatePartyRegistration(request_id=f"r{i}", ven_name=name)))
            ven_id = reg.ven_id
            if t.kind == "openleadr":
                return ven_id, f"rr-status-{i}", f"rr-usage-{i}"
            rep = ok(await post(s, "EiReport", metadata(ven_id)))
            rrs = {r.report_specifier_id: r.report_request_id for r in rep.report_requests}
            ok(await post(s, "EiReport", m.CreatedReport(
                m.EiResponse(200, "OK", rep.response.request_id),
                pending_report_request_ids=list(rrs.values()), ven_id=ven_id)))
            while True:  # drain the outbox (the VTN's own oadrRegisterReport)
                got = await post(s, "OadrPoll", m.Poll(ven_id=ven_id))
                if isinstance(got, m.Response):
                    break
                assert isinstance(got, m.RegisterReport), got
                ok(await post(s, "EiReport", m.RegisteredReport(
                    m.EiResponse(200, "OK", got.request_id), ven_id=ven_id)))
            ven = (ven_id, rrs["status-spec"], rrs["usage-spec"])
            ok(await post(s, "EiReport", update_report(*ven)))
            return ven

    async with aiohttp.ClientSession() as s:
        t.vens = list(await asyncio.gather(*(one(s, i) for i in range(n))))


def job_bodies(t: Target, message: str) -> tuple[str, list[bytes]]:
    if message == "poll":
        return "cycle", [encode(m.Poll(ven_id=v[0])) for v in t.vens]
    if message == "update":
        return "cycle", [encode(update_report(*v)) for v in t.vens]
    body = encode(m.CreatePartyRegistration(
        request_id="reg-1", ven_name="bench-" + loadgen.PLACEHOLDER.decode()))
    return "unique", [body]


# --- running ----------------------------------------------------------------------------


class Generators:
    """One or more load generator processes, kept for the whole run."""

    def __init__(self, n: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes, self.procs = [], []
        for _ in range(n):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=loadgen.worker, args=(child,), daemon=True)
            p.start()
            self.pipes.append(parent)
            self.procs.append(p)
        self.runs = 0

    def run(self, t: Target, message: str, connections: int, duration: float) -> dict[str, Any]:
        service, needles = MESSAGES[message]
        mode, bodies = job_bodies(t, message)
        use = self.pipes[: max(1, min(len(self.pipes), connections))]
        share = [connections // len(use) + (i < connections % len(use)) for i in range(len(use))]
        cpu0 = t.cpu_seconds()
        for i, (pipe, n) in enumerate(zip(use, share, strict=True)):
            self.runs += 1
            pipe.send(loadgen.Job(
                host="127.0.0.1", port=t.port, path=f"{OADR}/{service}", mode=mode,
                bodies=bodies[i::len(use)] or bodies, needles=needles, connections=n,
                duration=duration, tag=f"{self.runs:04x}",
            ))
        results = [pipe.recv() for pipe in use]
        cpu = t.cpu_seconds() - cpu0
        for r in results:
            if isinstance(r, Exception):
                raise r
        lat = sorted(x for r in results for x in r.latencies)
        replies = sum(r.replies for r in results)
        errors: dict[str, int] = {}
        for r in results:
            for k, v in r.error_kinds.items():
                errors[k] = errors.get(k, 0) + v
        failures = [f for r in results for f in r.decode_failures]
        return {
            "per_s": replies / duration,
            "p50_ms": 1000 * lat[len(lat) // 2] if lat else None,
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
            "replies": replies,
            "errors": sum(errors.values()),
            "error_kinds": errors,
            "decoded_ok": sum(r.decoded for r in results),
            "decode_failures": failures[:3],
            # CPU over warm-up + window (server: all its processes; load generator)
            "server_cpu_s": round(cpu, 3),
            "loadgen_cpu_s": round(sum(r.cpu_s for r in results), 3),
            "window_share": duration / (duration + 0.5),
        }

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for p in self.procs:
            p.join(5)


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


def summarise(raw: dict[str, list[dict[str, Any]]], duration: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, runs in raw.items():
        per_s = median_of(runs, "per_s") or 0.0
        # CPU per reply, counting only the measured window's share of the CPU time
        cpu_us = [1e6 * r["server_cpu_s"] * r["window_share"] / max(1, r["replies"])
                  for r in runs]
        gen_us = [1e6 * r["loadgen_cpu_s"] * r["window_share"] / max(1, r["replies"])
                  for r in runs]
        out[key] = {
            "per_s": round(per_s),
            "p50_ms": round(median_of(runs, "p50_ms") or 0, 3),
            "p99_ms": round(median_of(runs, "p99_ms") or 0, 3),
            "errors": sum(r["errors"] for r in runs),
            "replies": sum(r["replies"] for r in runs),
            "decoded_ok": sum(r["decoded_ok"] for r in runs),
            "decode_failures": [f for r in runs for f in r["decode_failures"]][:3],
            "server_cpu_us_per_req": round(statistics.median(cpu_us), 1),
            "loadgen_cpu_us_per_req": round(statistics.median(gen_us), 1),
            # how busy the load generator was (1.0 = one core all the time)
            "loadgen_core_share": round(statistics.median(
                r["loadgen_cpu_s"] / (duration + 0.5) for r in runs), 2),
            "runs_per_s": [round(r["per_s"]) for r in runs],
        }
    return out


def ratios(s: dict[str, Any]) -> dict[str, Any]:
    def r(a: str, b: str, message: str, c: int) -> float | None:
        x, y = s.get(f"{a}|{message}|{c}"), s.get(f"{b}|{message}|{c}")
        if not x or not y or not y["per_s"]:
            return None
        return round(x["per_s"] / y["per_s"], 2)

    out: dict[str, Any] = {}
    for c in (1, 32):
        out[f"c{c}"] = {
            "poll: 1w / openleadr (goal >= 2)": r("oadr-vtn 1w", "openleadr", "poll", c),
            "poll: 1w / trivial 1p (goal >= 0.7)": r("oadr-vtn 1w", "trivial 1p", "poll", c),
            "poll: 2w / trivial 2p": r("oadr-vtn 2w", "trivial 2p", "poll", c),
            "poll: 2w / openleadr": r("oadr-vtn 2w", "openleadr", "poll", c),
            "poll: 1w / 1w with http.fast_path off": r(
                "oadr-vtn 1w", "oadr-vtn 1w aiohttp", "poll", c),
            "update: 1w / openleadr (goal >= 3)": r("oadr-vtn 1w", "openleadr", "update", c),
            "update: 2w / openleadr": r("oadr-vtn 2w", "openleadr", "update", c),
            "register: 1w / openleadr (goal >= 1.5)": r(
                "oadr-vtn 1w", "openleadr", "register", c),
            "register: 2w / openleadr": r("oadr-vtn 2w", "openleadr", "register", c),
            "poll: 1w / 1w baseline (A/B)": r("oadr-vtn 1w", "oadr-vtn 1w baseline", "poll", c),
            "update: 1w / 1w baseline (A/B)": r(
                "oadr-vtn 1w", "oadr-vtn 1w baseline", "update", c),
            "update: 1w / trivial 1p": r("oadr-vtn 1w", "trivial 1p", "update", c),
        }
    return out


def plot(summary: dict[str, Any], targets: list[str], path_prefix: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (pip install -e '.[bench]'): no plots", file=sys.stderr)
        return []
    colors = ["#1f77b4", "#6baed6", "#9ecae1", "#d62728", "#7f7f7f", "#bdbdbd"]
    written = []
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, message in zip(axes, MESSAGES, strict=True):
        width = 0.8 / len(targets)
        for i, t in enumerate(targets):
            vals = [summary.get(f"{t}|{message}|{c}", {}).get("per_s", 0) for c in (1, 32)]
            ax.bar([x + i * width for x in (0, 1)], vals, width, label=t, color=colors[i])
        ax.set_xticks([0.4 - width / 2, 1.4 - width / 2], ["1 connection", "32 connections"])
        ax.set_title(LABELS[message], fontsize=9)
        ax.set_ylabel("requests / s")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("OpenADR 2.0b over HTTP, loopback, 2 vCPU (median of repeats)")
    fig.tight_layout()
    p = path_prefix.with_name(path_prefix.name + "_throughput.png")
    fig.savefig(p, dpi=110)
    written.append(str(p.relative_to(ROOT)))
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, message in zip(axes, MESSAGES, strict=True):
        width = 0.8 / len(targets)
        for i, t in enumerate(targets):
            cell = summary.get(f"{t}|{message}|32", {})
            ax.bar(i * width, cell.get("p50_ms", 0), width, color=colors[i], label=t)
            ax.bar(1 + i * width, cell.get("p99_ms", 0), width, color=colors[i])
        ax.set_xticks([0.4 - width / 2, 1.4 - width / 2], ["p50", "p99"])
        ax.set_title(LABELS[message] + ", 32 connections", fontsize=9)
        ax.set_ylabel("ms")
        ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Latency at 32 connections (log scale; median of repeats)")
    fig.tight_layout()
    p = path_prefix.with_name(path_prefix.name + "_latency.png")
    fig.savefig(p, dpi=110)
    written.append(str(p.relative_to(ROOT)))
    plt.close(fig)
    return written


def table(summary: dict[str, Any], targets: list[str]) -> str:
    rows = ["| message | conns | target | req/s | p50 ms | p99 ms | server CPU µs/req | "
            "errors |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    for message in MESSAGES:
        for c in (1, 32):
            for t in targets:
                s = summary.get(f"{t}|{message}|{c}")
                if s:
                    rows.append(
                        f"| {message} | {c} | {t} | {s['per_s']:,} | {s['p50_ms']:.2f} | "
                        f"{s['p99_ms']:.2f} | {s['server_cpu_us_per_req']:.0f} | {s['errors']} |"
                    )
    return "\n".join(rows)


async def prepare(targets: list[Target], vens: int) -> None:
    for t in targets:
        t.start()
    for t in targets:
        await wait_up(t)
    for t in targets:
        t0 = time.perf_counter()
        await setup_vens(t, vens)
        print(f"  {t.name}: {len(t.vens)} VENs ready in {time.perf_counter() - t0:.1f} s",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=3.0, help="Seconds per measurement.")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--vens", type=int, default=500, help="VENs registered per target.")
    ap.add_argument("--loadgen-procs", type=int, default=1)
    ap.add_argument("--targets", default="", help="Comma-separated subset of target names.")
    ap.add_argument("--messages", default="poll,update,register")
    ap.add_argument("--connections", default="1,32")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/http.json")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="Another checkout (with its .venv) run as 'oadr-vtn 1w baseline'.")
    args = ap.parse_args()
    messages = [x for x in args.messages.split(",") if x]
    conns = [int(x) for x in args.connections.split(",") if x]
    with tempfile.TemporaryDirectory() as tmp:
        targets = make_targets(Path(tmp), args.baseline)
        if args.targets:
            keep = set(args.targets.split(","))
            targets = [t for t in targets if t.name in keep]
        gens = Generators(args.loadgen_procs)
        raw: dict[str, list[dict[str, Any]]] = {}
        try:
            asyncio.run(prepare(targets, args.vens))
            for rep in range(args.repeats):
                order = targets[rep % len(targets):] + targets[: rep % len(targets)]
                for message in messages:
                    for c in conns:
                        for t in order:
                            res = gens.run(t, message, c, args.duration)
                            raw.setdefault(f"{t.name}|{message}|{c}", []).append(res)
                            print(f"rep {rep} {message:8} c={c:<3} {t.name:12} "
                                  f"{res['per_s']:8.0f}/s p50 {res['p50_ms']:7.2f} ms "
                                  f"p99 {res['p99_ms']:7.2f} ms errors {res['errors']}",
                                  flush=True)
                            assert t.proc is not None and t.proc.poll() is None, t.name
        finally:
            gens.close()
            for t in targets:
                t.stop()
    summary = summarise(raw, args.duration)
    names = [t.name for t in targets]
    result = {
        "command": "python -m bench.http_bench " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "settings": {"duration_s": args.duration, "repeats": args.repeats, "vens": args.vens,
                     "loadgen_procs": args.loadgen_procs, "messages": messages,
                     "connections": conns},
        "results": summary,
        "ratios": ratios(summary),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if not args.no_plots:
        (ROOT / "docs/images").mkdir(parents=True, exist_ok=True)
        result["plots"] = plot(summary, names, ROOT / "docs/images/http")
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(summary, names))
    print(json.dumps(result["ratios"], indent=2))


if __name__ == "__main__":
    main()
