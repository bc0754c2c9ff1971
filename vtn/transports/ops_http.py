"""Operator endpoints on the VTN's port: ``/ready`` (the store answers) and ``/metrics``
(Prometheus text format). ``/health`` (vtn.transports.http) stays a liveness probe that
never touches the store, so a store outage makes the VTN unready, not restarted."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from registry.port import StoreError
from registry.port.ops import FleetSummary
from vtn.app import Vtn
from vtn.metrics import JOB_BUCKETS, LATENCY_BUCKETS, METRICS, SharedSnapshots

READY_TIMEOUT_S = 2.0
SUMMARY_TTL_S = 5.0  # store-wide counts are cached this long between scrapes
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def package_version() -> str:
    try:
        return version("oadr-vtn")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


class OpsEndpoints:
    def __init__(self, vtn: Vtn, shared: SharedSnapshots | None) -> None:
        self.vtn, self.shared = vtn, shared
        self._summary: FleetSummary | None = None
        self._summary_at = 0.0

    async def ready(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await self.vtn.store.last_seq()
        except (StoreError, TimeoutError, OSError) as exc:
            METRICS.count(METRICS.store_errors, "ready")
            detail = str(exc) or "store did not answer in time"
            return web.json_response({"status": "unavailable", "detail": detail}, status=503)
        return web.json_response({"status": "ready", "vtn_id": self.vtn.config.vtn_id})

    async def summary(self) -> FleetSummary | None:
        now = time.monotonic()
        if self._summary is None or now - self._summary_at > SUMMARY_TTL_S:
            try:
                async with asyncio.timeout(READY_TIMEOUT_S * 2):
                    self._summary = await self.vtn.store.fleet_summary()
                self._summary_at = now
            except (StoreError, TimeoutError):
                METRICS.count(METRICS.store_errors, "metrics")
                return None
        return self._summary

    def authorized(self, request: web.Request) -> bool:
        token = self.vtn.config.http.metrics_token
        if not token:
            return True
        given = request.headers.get("Authorization", "")
        scheme, _, credentials = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), token.encode())

    async def metrics(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return web.json_response(
                {"type": "about:blank", "title": "Unauthorized", "status": 401,
                 "detail": "GET /metrics needs the bearer token of [http] metrics_token"},
                status=401, content_type="application/problem+json",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        snap = self.shared.all() if self.shared is not None else METRICS.snapshot()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(SnapshotCollector(snap, await self.summary(),
                                            self.vtn.config.http.workers))
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def _cumulative(counts: list[int], bounds: tuple[float, ...]) -> list[tuple[str, float]]:
    out, total = [], 0
    for bound, n in zip([*map(str, bounds), "+Inf"], counts, strict=True):
        total += n
        out.append((bound, total))
    return out


class SnapshotCollector(Collector):
    """One scrape's families, from the (merged) counters and the store summary."""

    def __init__(self, snap: dict[str, Any], summary: FleetSummary | None, workers: int):
        self.snap, self.summary, self.workers = snap, summary, workers

    def collect(self) -> Iterator[Metric]:
        snap = self.snap
        info = GaugeMetricFamily("vtn_info", "VTN version and worker processes",
                                 labels=["version", "workers"])
        info.add_metric([package_version(), str(self.workers)], 1)
        yield info
        refused: dict[str, int] = {}
        refusals = CounterMetricFamily(
            "vtn_openadr_refusals", "OpenADR error responses by message and code",
            labels=["service", "message", "code"])
        for key, n in sorted(snap.get("refusals", {}).items()):
            service, message, code = key.split("\t")
            refused[service] = refused.get(service, 0) + n
            refusals.add_metric([service, message, code], n)
        requests = CounterMetricFamily(
            "vtn_openadr_requests", "OpenADR requests by service and outcome (ok, refused: "
            "an OpenADR error code, http_NNN: an HTTP error)", labels=["service", "outcome"])
        for key, n in sorted(snap.get("requests", {}).items()):
            service, status = key.split("\t")
            if status == "200":
                requests.add_metric([service, "ok"], n - refused.get(service, 0))
                requests.add_metric([service, "refused"], refused.get(service, 0))
            else:
                requests.add_metric([service, f"http_{status}"], n)
        yield requests
        yield refusals
        latency = HistogramMetricFamily(
            "vtn_openadr_request_duration_seconds", "Time in the engine per OpenADR request",
            labels=["service"])
        for service, h in sorted(snap.get("latency", {}).items()):
            latency.add_metric([service], _cumulative(h["counts"], LATENCY_BUCKETS), h["sum"])
        yield latency
        jobs = HistogramMetricFamily("vtn_job_duration_seconds",
                                     "Scheduler job run time", labels=["job"])
        for job, h in sorted(snap.get("jobs", {}).items()):
            jobs.add_metric([job], _cumulative(h["counts"], JOB_BUCKETS), h["sum"])
        yield jobs
        for name, key, doc, label in (
            ("vtn_job_failures", "job_failures", "Scheduler job runs that raised", "job"),
            ("vtn_store_errors", "store_errors", "Store unavailable or failing, by caller",
             "where"),
            ("vtn_security_events", "security", "Refused registrations and messages", "kind"),
            ("vtn_liveness_transitions", "liveness", "VEN liveness changes by new state",
             "liveness"),
        ):
            family = CounterMetricFamily(name, doc, labels=[label])
            for k, n in sorted(snap.get(key, {}).items()):
                family.add_metric([k], n)
            yield family
        yield from self._store_families()

    def _store_families(self) -> Iterator[Metric]:
        s = self.summary
        up = GaugeMetricFamily("vtn_store_up", "1 when the store answered this scrape")
        up.add_metric([], 0 if s is None else 1)
        yield up
        if s is None:
            return
        vens = GaugeMetricFamily("vtn_vens", "VENs by liveness", labels=["liveness"])
        for k, n in sorted(s.vens_by_liveness.items()):
            vens.add_metric([k], n)
        yield vens
        registered = GaugeMetricFamily("vtn_vens_registered", "VENs with a registration")
        registered.add_metric([], s.vens_registered)
        yield registered
        ders = GaugeMetricFamily("vtn_ders", "DERs by liveness", labels=["liveness"])
        for k, n in sorted(s.ders_by_liveness.items()):
            ders.add_metric([k], n)
        yield ders
        cap = GaugeMetricFamily("vtn_der_max_capacity_watts", "Σ max_capacity by device class",
                                labels=["device_class"])
        for k, (_n, watts, _avail) in sorted(s.capacity_by_class.items()):
            cap.add_metric([k], watts)
        yield cap
        outbox = GaugeMetricFamily("vtn_outbox_depth", "Messages waiting for a VEN's poll")
        outbox.add_metric([], s.outbox_pending)
        yield outbox
        if s.size_bytes is not None:
            size = GaugeMetricFamily("vtn_store_size_bytes", "Size of the store")
            size.add_metric([], s.size_bytes)
            yield size
        schema = GaugeMetricFamily("vtn_store_schema_version", "Applied schema migration")
        schema.add_metric([], s.schema_version)
        yield schema


def mount_ops(app: web.Application, vtn: Vtn) -> None:
    shared = None
    if vtn.config.http.workers > 1:
        shared = SharedSnapshots(vtn.config.data_dir / "metrics")
        vtn.extra_jobs.append(("metrics.share", _write(shared), 2.0))
    ops = OpsEndpoints(vtn, shared)
    app.router.add_get("/ready", ops.ready)
    app.router.add_get("/metrics", ops.metrics)


def _write(shared: SharedSnapshots) -> Any:
    async def write() -> None:
        await asyncio.to_thread(shared.write)

    write.__module__, write.__qualname__ = "vtn.metrics", "share"  # job label metrics.share
    return write
