"""Wiring: config -> store -> service context -> scheduler. Shared by the CLI and tests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from registry.port import Store
from registry.sqlite import SqliteStore
from vtn import event_jobs, group_jobs, liveness
from vtn.config import Config
from vtn.security.files import create_private
from vtn.services import history, report_watch, views
from vtn.services.base import Context, utc_clock
from vtn.services.dispatch import Engine

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

    async def start(self) -> None:
        await self.store.open()
        if self.run_jobs:
            cfg = self.config.liveness
            self.scheduler = AsyncIOScheduler()
            self.scheduler.add_job(
                liveness.flush_contacts, "interval", args=[self.ctx],
                seconds=cfg.contact_flush_interval_s, max_instances=1, coalesce=True,
            )
            self.scheduler.add_job(
                liveness.sweep, "interval", args=[self.ctx],
                seconds=cfg.sweep_interval_s, max_instances=1, coalesce=True,
            )
            views_cfg = self.config.views
            self.scheduler.add_job(
                views.tick, "interval", args=[self.ctx],
                seconds=views_cfg.tick_s, max_instances=1, coalesce=True,
            )
            self.scheduler.add_job(
                self.views_gate.run, "interval", args=[self.ctx],
                seconds=views_cfg.refresh_s, max_instances=1, coalesce=True,
            )
            reports_cfg = self.config.reports
            self.scheduler.add_job(
                report_watch.check, "interval", args=[self.ctx],
                seconds=reports_cfg.check_s, max_instances=1, coalesce=True,
            )
            self.scheduler.add_job(
                history.flush, "interval", args=[self.ctx],
                seconds=reports_cfg.history_flush_s, max_instances=1, coalesce=True,
            )
            self.scheduler.add_job(
                event_jobs.tick, "interval", args=[self.ctx],
                seconds=self.config.events.status_interval_s, max_instances=1, coalesce=True,
            )
            self.scheduler.add_job(
                group_jobs.publish_status, "interval", args=[self.ctx],
                seconds=self.config.groups.status_interval_s, max_instances=1, coalesce=True,
            )
            self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
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
