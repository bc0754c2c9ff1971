"""Sustained fleet: N simulated OSBs (ven-sim) against ``vtn serve`` on the embedded store.

    .venv/bin/python -m bench.fleet_bench --vens 100000 --minutes 10 [--workers 2]

Starts ``vtn serve`` (SQLite store in a fresh data dir, default durability, open
enrollment so the simulated OSBs register themselves; poll period ``--poll``), then runs
the ven-sim fleet in this process (``ven_sim.fleet.run_fleet``, the engine of
``ven-sim run --vens N --poll PT60S``). Every VEN registers (query, create, METADATA for
its 4 DERs, created report, outbox drained), then polls every ``--poll`` seconds and
sends the oadrUpdateReports the VTN asked for (status + usage of its DERs, every
``reports.report_back_duration_s`` of the VTN, ``--report-back``).

Phases: registration (spread over ``--ramp`` seconds), a short settle, then the
measured window of ``--minutes``. Reported for the window: requests and rate, latency
p50/p99 (ven-sim's log histogram, ~12 % buckets), errors by kind (must be 0), and the
VTN's resident memory (all worker processes: anonymous and file-backed, the latter is
mostly the mmap'd SQLite file) at start, after registration and at the end, plus memory
per registered VEN. Writes bench/results/fleet.json and docs/images/fleet.png.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import platform
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_bench import Target, free_port, wait_up  # noqa: E402
from ven_sim.fleet import FleetOptions, run_fleet  # noqa: E402
from ven_sim.stats import LogHistogram, Stats  # noqa: E402
from vtn.server import run_fast  # noqa: E402


def rss(pids: list[int]) -> dict[str, float]:
    """Resident memory of these processes in MiB: anon (heap) and file (mmap, code)."""
    out = {"anon_mb": 0.0, "file_mb": 0.0}
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("RssAnon:"):
                out["anon_mb"] += int(line.split()[1]) / 1024
            elif line.startswith("RssFile:"):
                out["file_mb"] += int(line.split()[1]) / 1024
    return {k: round(v, 1) for k, v in out.items()} | {
        "total_mb": round(out["anon_mb"] + out["file_mb"], 1)
    }


def db_size_mb(db: Path) -> float:
    """The SQLite file with its WAL and shared-memory index."""
    return round(sum(os.path.getsize(p) for p in glob.glob(f"{db}*")) / 2**20, 1)


def hist_diff(now: LogHistogram, then: list[int], then_sum: float) -> LogHistogram:
    h = LogHistogram()
    h.counts = [a - b for a, b in zip(now.counts, then, strict=True)]
    h.total = sum(h.counts)
    h.sum = now.sum - then_sum
    top = max((i for i, c in enumerate(h.counts) if c), default=0)
    h.max = h.upper(top)
    return h


class Phases:
    """Watches the fleet once a second: registration -> settle -> window -> stop."""

    def __init__(self, vtn: Target, vens: int, settle_s: float, window_s: float,
                 stop: asyncio.Event) -> None:
        self.vtn, self.vens, self.settle_s, self.window_s, self.stop = (
            vtn, vens, settle_s, window_s, stop)
        self.t0 = time.monotonic()
        self.phase = "registration"
        self.registered_at: float | None = None
        self.window_start: dict[str, Any] = {}
        self.window_end: dict[str, Any] = {}
        self.samples: list[dict[str, Any]] = []
        self.minutes: list[dict[str, Any]] = []
        self._last_sample = 0.0
        self._minute_mark: tuple[float, list[int], float, int, int] | None = None

    def snapshot(self, stats: Stats) -> dict[str, Any]:
        return {
            "t": time.monotonic() - self.t0,
            "requests": stats.requests,
            "errors": dict(stats.errors),
            "sent": dict(stats.sent),
            "lat_counts": list(stats.latency.counts),
            "lat_sum": stats.latency.sum,
            "rss": rss(self.vtn.pids()),
            "registered": stats.vens_registered,
        }

    def tick(self, stats: Stats) -> None:
        now = time.monotonic()
        if now - self._last_sample >= 10.0:
            self._last_sample = now
            self.samples.append({
                "t": round(now - self.t0, 1), "phase": self.phase,
                "registered": stats.vens_registered, "requests": stats.requests,
                "errors": stats.error_count, "rss": rss(self.vtn.pids()),
                "lag_s": stats.lag_s,
            })
            print(f"{now - self.t0:7.0f} s {self.phase:12} registered {stats.vens_registered:7d}"
                  f" requests {stats.requests:9d} errors {stats.error_count}"
                  f" lag {stats.lag_s:.2f} s VTN RSS {self.samples[-1]['rss']['total_mb']} MB",
                  flush=True)
        if self.phase == "registration" and stats.vens_registered >= self.vens:
            self.phase, self.registered_at = "settle", now
            self.after_registration = self.snapshot(stats)
        elif self.phase == "settle" and now - (self.registered_at or now) >= self.settle_s:
            self.phase = "window"
            self.window_start = self.snapshot(stats)
            self._minute_mark = (now, list(stats.latency.counts), stats.latency.sum,
                                 stats.requests, stats.error_count)
        elif self.phase == "window":
            assert self._minute_mark is not None
            t, counts, lsum, reqs, errs = self._minute_mark
            if now - t >= 60.0:
                h = hist_diff(stats.latency, counts, lsum)
                self.minutes.append({
                    "minute": len(self.minutes) + 1,
                    "requests_per_s": round((stats.requests - reqs) / (now - t), 1),
                    "p50_ms": h.to_dict()["p50_ms"], "p99_ms": h.to_dict()["p99_ms"],
                    "errors": stats.error_count - errs, "rss": rss(self.vtn.pids()),
                })
                self._minute_mark = (now, list(stats.latency.counts), stats.latency.sum,
                                     stats.requests, stats.error_count)
            if now - self.window_start["t"] - self.t0 >= self.window_s:
                self.window_end = self.snapshot(stats)
                self.phase = "done"
                self.stop.set()


def start_vtn(d: Path, port: int, workers: int, poll_s: float, report_back_s: float) -> Target:
    cfg = d / "vtn.toml"
    cfg.write_text(textwrap.dedent(f"""
        data_dir = "{d / 'data'}"
        [http]
        port = {port}
        workers = {workers}
        [registration]
        open_enrollment = true
        poll_freq_s = {poll_s}
        [reports]
        report_back_duration_s = {report_back_s}
    """))
    cmd = [sys.executable, "-c", "from vtn.cli import main; main()", "serve", "--config", str(cfg)]
    t = Target(f"oadr-vtn {workers}w", "ours", cmd, port)
    t.start()
    return t


async def run(args: argparse.Namespace, d: Path) -> dict[str, Any]:
    port = free_port()
    vtn = start_vtn(d, port, args.workers, args.poll, args.report_back)
    try:
        await wait_up(vtn)
        await asyncio.sleep(1.0)
        rss_start = rss(vtn.pids())
        stop = asyncio.Event()
        phases = Phases(vtn, args.vens, args.settle, args.minutes * 60, stop)
        options = FleetOptions(
            vtn=f"http://127.0.0.1:{port}", vens=args.vens, poll_s=args.poll,
            ramp_s=args.ramp, connections=args.connections, timeout_s=args.timeout,
            scenario="steady", seed=1,
        )
        stats = await run_fleet(options, stop, on_tick=phases.tick)
        assert vtn.proc is not None
        alive = vtn.proc.poll() is None
        db = d / "data" / "vtn.sqlite3"
        db_mb = db_size_mb(db)
    finally:
        vtn.stop()
    if phases.phase != "done":
        raise SystemExit(f"fleet stopped in phase {phases.phase}")
    a, b = phases.window_start, phases.window_end
    hist = hist_diff(stats.latency, a["lat_counts"], a["lat_sum"])
    hist.counts = [x - y for x, y in zip(b["lat_counts"], a["lat_counts"], strict=True)]
    hist.total, hist.sum = sum(hist.counts), b["lat_sum"] - a["lat_sum"]
    errors = {k: v - a["errors"].get(k, 0) for k, v in b["errors"].items()
              if v - a["errors"].get(k, 0)}
    sent = {k: v - a["sent"].get(k, 0) for k, v in b["sent"].items()}
    seconds = b["t"] - a["t"]
    reg = phases.after_registration
    per_ven = {
        k: round((reg["rss"][k] - rss_start[k]) * 2**20 / args.vens)
        for k in ("anon_mb", "total_mb")
    }
    return {
        "vens": args.vens,
        "ders_per_ven": 4,
        "poll_s": args.poll,
        "report_back_s": args.report_back,
        "workers": args.workers,
        "registration_s": round(reg["t"], 1),
        "registration_vens_per_s": round(args.vens / reg["t"], 1),
        "registration_errors": sum(reg["errors"].values()),
        "window": {
            "seconds": round(seconds, 1),
            "requests": b["requests"] - a["requests"],
            "requests_per_s": round((b["requests"] - a["requests"]) / seconds, 1),
            "sent": sent,
            "latency": hist.to_dict(),
            "errors": errors,
            "error_count": sum(errors.values()),
        },
        "vtn_rss": {
            "start": rss_start,
            "after_registration": reg["rss"],
            "window_start": a["rss"],
            "end": b["rss"],
        },
        "bytes_per_registered_ven": per_ven,
        "db_file_mb": db_mb,
        "db_path_was": str(db),
        "vtn_alive_at_end": alive,
        "fleet_total": stats.to_dict(),
        "minutes": phases.minutes,
        "samples": phases.samples,
    }


def plot(result: dict[str, Any], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    s = result["samples"]
    t = [x["t"] / 60 for x in s]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    rate = [0.0] + [
        (s[i]["requests"] - s[i - 1]["requests"]) / max(1e-9, s[i]["t"] - s[i - 1]["t"])
        for i in range(1, len(s))
    ]
    ax1.plot(t, rate, label="requests/s")
    ax1.set_xlabel("minutes")
    ax1.set_ylabel("requests / s")
    ax1b = ax1.twinx()
    ax1b.plot(t, [x["registered"] for x in s], color="#d62728", label="registered VENs")
    ax1b.set_ylabel("registered VENs")
    ax1.set_title(f"{result['vens']:,} simulated OSBs, poll {result['poll_s']:.0f} s")
    ax1.grid(alpha=0.3)
    ax2.plot(t, [x["rss"]["anon_mb"] for x in s], label="VTN RSS anon (heap)")
    ax2.plot(t, [x["rss"]["total_mb"] for x in s], label="VTN RSS total (incl. mmap'd DB)")
    ax2.set_xlabel("minutes")
    ax2.set_ylabel("MiB")
    ax2.set_title(f"VTN memory ({result['workers']} worker(s))")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vens", type=int, default=100_000)
    ap.add_argument("--minutes", type=float, default=10.0, help="Measured window.")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--poll", type=float, default=60.0, help="Poll period (s).")
    ap.add_argument("--report-back", type=float, default=60.0,
                    help="VTN reports.report_back_duration_s (how often VENs report).")
    ap.add_argument("--ramp", type=float, default=None,
                    help="Spread registrations over this many seconds (default vens/250).")
    ap.add_argument("--settle", type=float, default=60.0,
                    help="Seconds between the last registration and the window.")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/fleet.json")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--plot", type=Path, default=ROOT / "docs/images/fleet.png")
    args = ap.parse_args()
    if args.ramp is None:
        args.ramp = args.vens / 250
    with tempfile.TemporaryDirectory() as tmp:
        result = run_fast(run(args, Path(tmp)))  # uvloop, as ven-sim run
    result = {
        "command": "python -m bench.fleet_bench " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if not args.no_plot:
        (ROOT / "docs/images").mkdir(parents=True, exist_ok=True)
        result["plot"] = plot(result, args.plot.resolve())
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    w = result["window"]
    print(json.dumps({k: result[k] for k in ("registration_s", "vtn_rss",
                                             "bytes_per_registered_ven")}, indent=2))
    print(f"window {w['seconds']} s: {w['requests']} requests ({w['requests_per_s']}/s), "
          f"p50 {w['latency']['p50_ms']} ms p99 {w['latency']['p99_ms']} ms, "
          f"errors {w['error_count']} {w['errors']}")


if __name__ == "__main__":
    main()
