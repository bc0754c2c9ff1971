"""A full disk is "store unavailable", not an internal error (issue #13, finding 9).

The SQLite file is made full for real with ``PRAGMA max_page_count`` on the store's own
connection: SQLite then fails writes with SQLITE_FULL ("database or disk is full")
exactly as on a full filesystem. OpenADR and the side API answer 503 (retryable, one log
line per request, no traceback), reads keep working, and once the limit is raised again
the same process writes again. Real HTTP on loopback, real app, real SQLite file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator

import pytest

from registry.models import LogEntry, Ven
from registry.port import Batch, StoreUnavailable
from registry.sqlite.errors import unavailable
from tests.api_support import Api, api_server, der, seed
from vtn.codec import decode, encode
from vtn.codec import messages as m
from vtn.config import Config
from vtn.services.admin import provision_ven

pytestmark = pytest.mark.skipif(os.environ.get("TEST_STORE", "sqlite") != "sqlite",
                                reason="PRAGMA max_page_count is SQLite's")


@pytest.fixture
async def api(config: Config) -> AsyncIterator[Api]:
    async with api_server(config) as a:
        await seed(a, [Ven(ven_id="v1", ven_name="osb-1", aggregator_id="A1")],
                   [der(f"boiler-{i}", "v1", aggregator_id="A1") for i in range(5)])
        await provision_ven(a.served.vtn.ctx, name="osb-new")
        yield a


async def fill(api: Api) -> None:
    """Cap the file at its current size, then use up the free space left in its pages."""
    store = api.served.vtn.store
    db: sqlite3.Connection = store.db  # type: ignore[attr-defined]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count={pages}")
    for size in (4000, 1000, 200, 50):
        for _ in range(10_000):
            try:
                await store.commit(Batch(log=[LogEntry(kind="filler", data={"x": "x" * size})]))
            except (StoreUnavailable, sqlite3.OperationalError):  # before the fix: raw
                break
        else:
            raise AssertionError("the store never became full")


async def register(api: Api) -> tuple[int, bytes]:
    body = encode(m.CreatePartyRegistration(request_id="r1", ven_name="osb-new"))
    async with api.session.post(f"{api.served.url}/EiRegisterParty", data=body,
                                headers={"Content-Type": "application/xml"}) as r:
        return r.status, await r.read()


async def test_disk_full_is_503_everywhere_and_recovers(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    devices = [d.device_id for d in await api.served.vtn.store.ders_of_ven("v1")]
    await fill(api)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status, body = await register(api)  # OpenADR: registration writes
        assert status == 503, body
        async with api.session.patch(f"{api.base}/ders/{devices[0]}",
                                     json={"device_name": "y" * 200},
                                     headers=api.headers()) as r:
            assert r.status == 503 and r.content_type == "application/problem+json"
            assert r.headers["Retry-After"]
            problem = await r.json(content_type=None)
        assert problem["status"] == 503 and problem["title"] == "store unavailable"
        # concurrent writes (one group commit) fail alike, none with a 500
        results = await asyncio.gather(*(
            api.patch(f"/ders/{d}", {"device_name": "z" * 200}) for d in devices))
        assert [s for s, _, _ in results] == [503] * len(devices)
        status, page = await api.get("/ders")  # reads still work
        assert status == 200 and len(page["items"]) == len(devices)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2 + len(devices), warnings  # one line per refused request
    assert all("database or disk is full" in w for w in warnings), warnings

    # space returns: the same process writes again
    db: sqlite3.Connection = api.served.vtn.store.db  # type: ignore[attr-defined]
    db.execute("PRAGMA max_page_count=1073741823")
    status, body = await register(api)
    reply = decode(body)
    assert status == 200 and isinstance(reply, m.CreatedPartyRegistration)
    assert reply.response.code == 200
    status, der_body, _ = await api.patch(f"/ders/{devices[0]}", {"device_name": "y" * 200})
    assert status == 200 and der_body["device_name"] == "y" * 200


def error(message: str, code: int | None = None) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(message)
    if code is not None:
        exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (error("database or disk is full", 13), True),
        (error("disk I/O error", 10), True),
        (error("disk I/O error", 778), True),  # SQLITE_IOERR_WRITE
        (error("disk I/O error"), True),  # no code: by its message
        (error("database is locked", 5), True),
        (error("no such table: x", 1), False),
        (sqlite3.DatabaseError("database disk image is malformed"), False),
        (ValueError("database or disk is full"), False),
    ],
)
def test_which_sqlite_errors_mean_unavailable(exc: Exception, transient: bool) -> None:
    assert (unavailable(exc) is not None) is transient
