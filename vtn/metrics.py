"""In-process counters of one VTN process, cheap enough for the OpenADR poll path.

Plain ints and lists, incremented without locks (one event loop thread writes them; the
decode threads never do), rendered as Prometheus families only when ``/metrics`` is
scraped (:mod:`vtn.transports.ops_http`). A request costs two ``perf_counter`` calls,
a ``bisect`` over 12 bucket bounds and three dict/list increments (see
docs/benchmarks.md, "Metrics cost"). With ``--workers N`` each worker writes its
snapshot to ``<data_dir>/metrics/<pid>.json`` every few seconds and a scrape of any
worker sums them: the equivalent of prometheus-client's multiprocess mode, without a
lock and an mmap write per increment on the hot path.
"""

from __future__ import annotations

import json
import os
import time
from bisect import bisect_left
from pathlib import Path
from typing import Any

# seconds; the poll path answers in ~0.1-1 ms, reports and registrations in a few ms
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
JOB_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)


class Histogram:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def to_json(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "sum": self.sum}


class Metrics:
    """Everything counted in this process since it started."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}  # (service, HTTP status)
        self.latency: dict[str, Histogram] = {}  # service
        # (service, message, OpenADR code): error codes in 200 replies
        self.refusals: dict[tuple[str, str, int], int] = {}
        self.jobs: dict[str, Histogram] = {}
        self.job_failures: dict[str, int] = {}
        self.store_errors: dict[str, int] = {}  # where
        self.security: dict[str, int] = {}  # kind (registration refused, signature...)
        self.liveness: dict[str, int] = {}  # transitions by new state

    def request(self, service: str, status: int, seconds: float) -> None:
        key = (service, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        hist = self.latency.get(service)
        if hist is None:
            hist = self.latency[service] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def refusal(self, service: str, message: str, code: int) -> None:
        """An OpenADR refusal (an error response code in a 200 reply)."""
        key = (service, message, code)
        self.refusals[key] = self.refusals.get(key, 0) + 1

    def job(self, name: str, seconds: float, failed: bool) -> None:
        hist = self.jobs.get(name)
        if hist is None:
            hist = self.jobs[name] = Histogram(JOB_BUCKETS)
        hist.observe(seconds)
        if failed:
            self.job_failures[name] = self.job_failures.get(name, 0) + 1

    def count(self, family: dict[str, int], key: str, n: int = 1) -> None:
        family[key] = family.get(key, 0) + n

    def snapshot(self) -> dict[str, Any]:
        """JSON-able; keys of tuple-keyed families joined with a tab."""
        return {
            "requests": {f"{s}\t{c}": v for (s, c), v in self.requests.items()},
            "latency": {k: h.to_json() for k, h in self.latency.items()},
            "refusals": {f"{s}\t{m}\t{c}": v for (s, m, c), v in self.refusals.items()},
            "jobs": {k: h.to_json() for k, h in self.jobs.items()},
            "job_failures": dict(self.job_failures),
            "store_errors": dict(self.store_errors),
            "security": dict(self.security),
            "liveness": dict(self.liveness),
        }


METRICS = Metrics()  # this process's (one event loop per process)


def merge(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the snapshots of several workers."""
    out: dict[str, Any] = {}
    for snap in snapshots:
        for family, values in snap.items():
            into = out.setdefault(family, {})
            for key, value in values.items():
                if isinstance(value, dict):  # a histogram
                    have = into.setdefault(key, {"counts": [0] * len(value["counts"]),
                                                 "sum": 0.0})
                    have["counts"] = [a + b for a, b in zip(have["counts"], value["counts"],
                                                            strict=True)]
                    have["sum"] += value["sum"]
                else:
                    into[key] = into.get(key, 0) + value
    return out


class SharedSnapshots:
    """The per-worker files of ``--workers N`` (a directory under data_dir)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.own = directory / f"{os.getpid()}.json"

    def write(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.own.with_suffix(".tmp")
        tmp.write_text(json.dumps(METRICS.snapshot()))
        os.replace(tmp, self.own)  # readers see the old file or the new one, whole

    def all(self) -> dict[str, Any]:
        snaps = [METRICS.snapshot()]
        for path in self.directory.glob("*.json"):
            if path == self.own:
                continue
            try:
                snaps.append(json.loads(path.read_text()))
            except (OSError, ValueError):  # being replaced, or a dead worker's torn file
                continue
        return merge(snaps)

    @staticmethod
    def reset(directory: Path) -> None:
        """Called by the parent before starting workers: counters start at zero."""
        if directory.is_dir():
            for path in directory.glob("*.json"):
                path.unlink(missing_ok=True)


def timed_job(name: str, fn: Any) -> Any:
    """Wrap a scheduler job so its duration (and failures) are counted."""

    async def job(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        failed = True
        try:
            result = await fn(*args, **kwargs)
            failed = False
            return result
        finally:
            METRICS.job(name, time.perf_counter() - started, failed)

    job.__name__ = getattr(fn, "__name__", name)
    return job
