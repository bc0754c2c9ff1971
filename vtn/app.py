"""Wiring: config -> store -> service context -> scheduler. Shared by the CLI and tests."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from registry.port import Store
from registry.sqlite import SqliteStore
from vtn import dispatch_jobs, event_jobs, group_jobs, liveness
from vtn.config import Config
from vtn.delivery import Drainer
from vtn.leased_jobs import JobRunner
from vtn.metrics import timed_job
from vtn.security.files import create_private
from vtn.services import history, report_watch, views
from vtn.services.base import Context, utc_clock
from vtn.services.dispatch import Engine

if TYPE_CHECKING:
    from vtn.transports.xmpp import XmppTransport

log = logging.getLogger(__name__)


def make_store(config: Config) -> Store:
    url = config.store.url
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from registry.mongo import MongoStore

        return MongoStore(url, config.store)
    if url and not url.startswith("sqlite:///"):
        raise ValueError(f"unsupported store url {url!r} (sqlite:///PATH or mongodb://...)")
    create_private(config.sqlite_path)  # 0600 before SQLite opens it (and its -wal, -shm)
    return SqliteStore(config.sqlite_path, synchronous=config.store.sqlite_synchronous)


class Vtn:
    """One VTN process: store, protocol engine and background jobs."""

    def __init__(
        self,
        config: Config,
        store: Store | None = None,
        clock: Callable[[], datetime] = utc_clock,
        run_jobs: bool = True,
    ) -> None:
        self.config = config
        self.store = store or make_store(config)
        self.ctx = Context(store=self.store, config=config, clock=clock)
        self.engine = Engine(self.ctx)
        self.run_jobs = run_jobs
        self.scheduler: AsyncIOScheduler | None = None
        self.views_gate = views.RefreshGate()
        # (name, coroutine function, interval s) added by transports before start()
        self.extra_jobs: list[tuple[str, Callable[[], Awaitable[Any]], float]] = []
        self.jobs: JobRunner | None = None
        # outbox drainers of the transports that deliver to VENs (vtn.delivery): HTTP
        # push is added at start(); another transport appends its own before start()
        self.drainers: list[Drainer] = []
        self.push: Drainer | None = None  # HTTP push, while running
        self.xmpp: XmppTransport | None = None  # the XMPP session ([xmpp]), while running

    async def start(self) -> None:
        await self.store.open()
        if self.config.xmpp.enabled:
            from vtn.transports.xmpp_delivery import start_xmpp

            self.xmpp = await start_xmpp(self)
        if self.run_jobs:
            cfg, views_cfg = self.config.liveness, self.config.views
            reports_cfg = self.config.reports
            self.scheduler = AsyncIOScheduler()
            # leased: once across the nodes sharing the store; local: per-node state.
            # Every job is timed under its name for /metrics.
            jobs = self.jobs = JobRunner(self.ctx, self.scheduler, self.config.jobs)
            t = timed_job
            jobs.local(t("liveness.flush_contacts", liveness.flush_contacts),
                       seconds=cfg.contact_flush_interval_s)
            jobs.leased("liveness.sweep", t("liveness.sweep", liveness.sweep),
                        seconds=cfg.sweep_interval_s, shards=self.config.jobs.sweep_shards)
            jobs.leased("views.tick", t("views.tick", views.tick), seconds=views_cfg.tick_s)
            jobs.leased("views.refresh", t("views.refresh", self.views_gate.run),
                        seconds=views_cfg.refresh_s)
            jobs.leased("report_watch.check", t("report_watch.check", report_watch.check),
                        seconds=reports_cfg.check_s)
            jobs.local(t("history.flush", history.flush), seconds=reports_cfg.history_flush_s)
            jobs.leased("event_jobs.tick", t("event_jobs.tick", event_jobs.tick),
                        seconds=self.config.events.status_interval_s)
            # group re-dispatch (opt-outs, offline members) and group.status entries
            jobs.leased("dispatch_jobs.tick", t("dispatch_jobs.tick", dispatch_jobs.tick),
                        seconds=self.config.events.status_interval_s)
            jobs.leased("group_jobs.publish_status",
                        t("group_jobs.publish_status", group_jobs.publish_status),
                        seconds=self.config.groups.status_interval_s)
            for name, fn, seconds in self.extra_jobs:  # per process (e.g. metrics.share)
                self.scheduler.add_job(t(name, fn), "interval", seconds=seconds, name=name,
                                       max_instances=1, coalesce=True)
            self.scheduler.start()
            if self.config.push.enabled:
                from vtn.transports.push import HttpPushDeliverer, policy_of

                self.push = Drainer(self.ctx, self.engine, HttpPushDeliverer(self.config),
                                    policy_of(self.config.push))
            for drainer in self.running_drainers():
                await drainer.start()

    def running_drainers(self) -> list[Drainer]:
        return [*self.drainers, *([self.push] if self.push is not None else [])]

    async def stop(self) -> None:
        for drainer in self.running_drainers():
            try:
                await drainer.stop()
            except Exception:
                log.exception("delivery stopped with an error")
        self.push = None
        if self.xmpp is not None:
            await self.xmpp.stop()
            self.xmpp = None
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self.jobs is not None:
            await self.jobs.release_all()
        if history.buffer_of(self.ctx).acc:  # telemetry samples not written yet
            try:
                await history.flush(self.ctx)
            except Exception:
                log.exception("telemetry history not written at stop")
        try:
            await liveness.flush_contacts(self.ctx)
        finally:
            self.engine.close()  # its decode and signature worker threads
            await self.store.close()
