"""A real `vtn serve` with ven-sim OSB fleets of two aggregators, and the system
chromium driven by Playwright, for the dashboard's browser tests.

Nothing is downloaded: Playwright's Python package brings its driver, the browser is
Debian's ``chromium`` (``CHROMIUM`` overrides the path). Without either the tests skip
with the reason printed (the suite runs with -rs).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from registry.api.auth import issue_token
from tests.conftest import free_port
from vtn.app import make_store
from vtn.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
# (name prefix, VENs, aggregator): fleet "c" is stopped by a test (its DER goes offline)
FLEETS = (("a-osb-", 2, "agg-a"), ("b-osb-", 2, "agg-b"), ("c-osb-", 1, "agg-a"))
DERS_PER_VEN = 3


def chromium_path() -> str | None:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    return path if path and Path(path).exists() else None


def require_browser() -> str:
    """The browser's path, or skip (printed with -rs) saying what is missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("dashboard browser tests: the playwright package is not installed "
                    "(pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        pytest.skip("dashboard browser tests: no chromium on this machine "
                    "(apt-get install -y chromium, or set CHROMIUM=/path/to/chromium)")
    return path


CONFIG = """
[registration]
poll_freq_s = 1
[reports]
status_granularity_s = 1
usage_granularity_s = 1
report_back_duration_s = 1
history_bucket_s = 2
history_flush_s = 0.5
[liveness]
stale_after_polls = 2
offline_after_polls = 3
sweep_interval_s = 0.3
contact_flush_interval_s = 0.3
"""


def ven_name(prefix: str, i: int) -> str:
    return f"{prefix}{i:05d}"  # ven-sim's zero-padded names


@dataclass
class Fleet:
    """The served VTN, its ven-sim fleets, and helpers to read the API as each role."""

    config: Config
    url: str
    vtn: subprocess.Popen[bytes]
    sims: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ven_ids: dict[str, str] = field(default_factory=dict)  # ven name -> venID

    def token(self, role: str = "service", **claims: Any) -> str:
        return issue_token(self.config, role, **claims)

    def api(self, path: str, token: str | None = None) -> Any:
        req = urllib.request.Request(f"{self.url}/api/v1{path}", headers={
            "Authorization": f"Bearer {token or self.token()}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stop_fleet(self, prefix: str) -> None:
        proc = self.sims.pop(prefix)
        proc.terminate()
        proc.wait(10)


def eventually(check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.2)


async def _provision(config: Config) -> dict[str, str]:
    from vtn.app import Vtn
    from vtn.services.admin import provision_ven

    vtn = Vtn(config, store=make_store(config))
    await vtn.store.open()
    ids: dict[str, str] = {}
    try:
        for prefix, n, agg in FLEETS:
            for i in range(1, n + 1):
                name = ven_name(prefix, i)
                ven = await provision_ven(vtn.ctx, name=name, aggregator_id=agg,
                                          account_id=f"acc-{name}")
                ids[name] = ven.ven_id
    finally:
        await vtn.store.close()
    return ids


def start_fleet(tmp: Path, store_url: str | None) -> Iterator[Fleet]:
    """Provision, serve, run the fleets until every DER is known; stop all at the end."""
    port = free_port()
    cfg_file = tmp / "vtn.toml"
    text = CONFIG + (f'\n[store]\nurl = "{store_url}"\n' if store_url else "")
    cfg_file.write_text(text)
    config = load_config(cfg_file, data_dir=tmp / "data", **{"http.port": port})
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API may own this thread's loop
        ven_ids = pool.submit(asyncio.run, _provision(config)).result()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(tmp / "vtn.log", "wb")  # noqa: SIM115 (closed below)
    vtn = subprocess.Popen(
        [sys.executable, "-m", "vtn.cli", "serve", "--config", str(cfg_file),
         "--data-dir", str(tmp / "data"), "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    fleet = Fleet(config, f"http://127.0.0.1:{port}", vtn, ven_ids=ven_ids)
    try:
        eventually(lambda: _health(fleet.url), 30, "vtn serve to answer /health")
        for seed, (prefix, n, _) in enumerate(FLEETS, start=1):
            fleet.sims[prefix] = subprocess.Popen(
                [sys.executable, "-m", "ven_sim.cli", "run", "--vtn", fleet.url, "--vens",
                 str(n), "--ders-per-ven", str(DERS_PER_VEN), "--name-prefix", prefix,
                 "--seed", str(seed), "--quiet", "--ramp", "0.2", "--radius-km", "15"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        total = sum(n for _, n, _ in FLEETS) * DERS_PER_VEN
        eventually(lambda: fleet.api("/stats")["total"] == total
                   and fleet.api("/overview")["ders"]["by_liveness"].get("online", 0) >= total - 1,
                   60, f"{total} DERs registered and online")
        yield fleet
    finally:
        for proc in fleet.sims.values():
            proc.terminate()
        for proc in fleet.sims.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        vtn.terminate()
        try:
            vtn.wait(15)
        except subprocess.TimeoutExpired:
            vtn.kill()
        log.close()


def _health(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False
