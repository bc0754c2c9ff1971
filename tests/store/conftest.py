"""One contract for every store adapter: the same behaviour on SQLite and on MongoDB.

Every test of this package runs against both backends: ``open_store`` is parametrised
over them (MongoDB: nx-27017 from the session's ``mongo_server``, or TEST_MONGO_URI).
Concurrency tests open two store instances on the same file / database (as two VTN
processes would) and race them with asyncio.gather.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.port import Store
from tests.mongo_server import MongoServer, nx_available
from tests.store.support import Opener


@pytest.fixture(params=["sqlite", "mongo"])
async def open_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Opener]:
    """Opens store instances on one shared database; all closed after the test."""
    opened: list[Store] = []
    if request.param == "mongo":
        if not nx_available():
            pytest.skip("nx-27017 not installed and TEST_MONGO_URI not set")
        server: MongoServer = request.getfixturevalue("mongo_server")
        url = server.url()

        def make() -> Store:
            from registry.mongo import MongoStore

            return MongoStore(url)
    else:
        from registry.sqlite import SqliteStore

        def make() -> Store:
            return SqliteStore(tmp_path / "contract.sqlite3")

    async def opener() -> Store:
        store = make()
        await store.open()
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: Opener) -> Store:
    return await open_store()
