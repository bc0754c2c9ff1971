"""Running the HTTP server, in one process or several sharing one port (SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from vtn.app import Vtn
from vtn.config import Config
from vtn.metrics import SharedSnapshots
from vtn.security.tls import server_context
from vtn.transports.site import HttpSite

log = logging.getLogger(__name__)
T = TypeVar("T")

# After a refused body (413/408) aiohttp keeps reading and discarding for lingering_time
# so the client sees the answer; 2 s instead of 10 s bounds what a hostile sender holds.
RUNNER_OPTIONS: dict[str, Any] = {
    "access_log": None, "handle_signals": False, "lingering_time": 2.0,
}


async def run_server(config: Config, reuse_port: bool = False) -> None:
    """Serve until cancelled or SIGTERM/SIGINT."""
    vtn = Vtn(config)
    ssl_context = server_context(config.tls) if config.tls.enabled else None
    site = HttpSite(
        vtn, config.http.host, config.http.port, ssl_context=ssl_context,
        reuse_port=reuse_port, **RUNNER_OPTIONS,
    )
    await site.start()
    log.info(
        "VTN %s listening on %s://%s:%d/OpenADR2/Simple/2.0b (pid %d, store %s)",
        config.vtn_id, "https" if ssl_context else "http", config.http.host, config.http.port,
        os.getpid(),
        config.store.url or config.sqlite_path,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("VTN %s stopping (pid %d): finishing requests in flight",
                 config.vtn_id, os.getpid())
    finally:
        await site.stop()
    log.info("VTN %s stopped (pid %d)", config.vtn_id, os.getpid())


def _worker(config: Config) -> None:
    from vtn.cli.errors import describe
    from vtn.logs import setup_logging

    setup_logging(config.logging)
    use_uvloop()
    try:
        asyncio.run(run_server(config, reuse_port=True))
    except Exception as exc:  # one line, as in one process (vtn.cli.errors)
        log.error("worker %d: %s", os.getpid(), describe(exc))
        sys.exit(1)


def use_uvloop() -> None:
    try:
        import uvloop  # optional, faster event loop

        uvloop.install()
    except ImportError:
        pass


def run_fast(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on a uvloop loop when available, without changing the process-wide
    event loop policy (ven-sim and benchmarks run inside other programs' processes)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def worker_config(config: Config, index: int) -> Config:
    """Worker ``index``'s config: only the first logs in to XMPP. VENs address the VTN's
    full JID, and a second session with the same JID would replace the first (resource
    conflict) over and over; the other workers still serve HTTP and share the store."""
    if index == 0 or not config.xmpp.enabled:
        return config
    return config.model_copy(update={"xmpp": config.xmpp.model_copy(update={"enabled": False})})


def serve_forever(config: Config) -> None:
    workers = config.http.workers
    if workers <= 1:
        use_uvloop()
        asyncio.run(run_server(config))
        return
    SharedSnapshots.reset(config.data_dir / "metrics")  # /metrics of this run start at 0
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(worker_config(config, i),), daemon=False)
             for i in range(workers)]
    for p in procs:
        p.start()

    def forward(signum: int, _frame: object) -> None:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signum)  # type: ignore[arg-type]

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for p in procs:
        p.join()
    failed = [p for p in procs if p.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT)]
    if failed:
        raise SystemExit(f"Error: {len(failed)} of {workers} workers failed (see above)")
