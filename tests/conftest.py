"""Shared fixtures: a real VTN on loopback HTTP over a real store file."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from registry.port import Store
from tests.mongo_server import MongoServer
from vtn.app import Vtn, make_store
from vtn.codec import validate
from vtn.config import Config, load_config
from vtn.services.dispatch import Engine, Reply
from vtn.transports.site import HttpSite


class FakeClock:
    """A controllable clock for liveness tests (the VTN takes the clock as a parameter)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ValidatingEngine(Engine):
    """The real engine; every XML reply it emits is checked against the 2.0b XSD."""

    emitted = 0

    async def handle(self, service: str, body: bytes, fingerprint: str | None = None) -> Reply:
        reply = await super().handle(service, body, fingerprint)
        if reply.content_type == "application/xml":
            validate(reply.body)
            ValidatingEngine.emitted += 1
        return reply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[MongoServer]:
    """nx-27017 on a free port for the whole session (or TEST_MONGO_URI), stopped at the end."""
    server = MongoServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_url(mongo_server: MongoServer) -> str:
    """Base URL of the session's MongoDB (add a database name to use it)."""
    return mongo_server.base


@pytest.fixture
def config(tmp_path: Path, request: pytest.FixtureRequest) -> Config:
    """TEST_STORE=sqlite (default) or mongo: a fresh database per test either way."""
    overrides: dict[str, object] = {"http.port": free_port()}
    if os.environ.get("TEST_STORE", "sqlite") == "mongo":
        server: MongoServer = request.getfixturevalue("mongo_server")
        overrides["store.url"] = server.url()
    return load_config(None, data_dir=tmp_path / "data", **overrides)


def make_vtn(config: Config, clock: Callable[[], datetime] | None = None,
             store: Store | None = None, run_jobs: bool = False) -> Vtn:
    kwargs = {"clock": clock} if clock else {}
    vtn = Vtn(config, store=store or make_store(config), run_jobs=run_jobs, **kwargs)
    vtn.engine = ValidatingEngine(vtn.ctx)
    return vtn


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def vtn(config: Config, clock: FakeClock) -> AsyncIterator[Vtn]:
    """A VTN with a controllable clock, used without a socket."""
    v = make_vtn(config, clock)
    await v.start()
    yield v
    await v.stop()


@dataclass
class Served:
    vtn: Vtn
    url: str  # base URL of the OpenADR endpoints
    site: HttpSite

    async def stop(self) -> None:
        await self.site.stop()


async def serve(config: Config, run_jobs: bool = False) -> Served:
    v = make_vtn(config, run_jobs=run_jobs)
    site = HttpSite(v, "127.0.0.1", config.http.port)
    await site.start()
    return Served(v, f"http://127.0.0.1:{config.http.port}/OpenADR2/Simple/2.0b", site)


@pytest.fixture
async def served(config: Config) -> AsyncIterator[Served]:
    s = await serve(config)
    yield s
    await s.stop()
