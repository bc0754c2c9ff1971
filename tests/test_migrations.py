"""Schema versions and migrations (issue #18): a store written by the previous release
(tests/fixtures/store-v0.sqlite3, made by the unversioned main) opens, is migrated at
start-up and keeps its data; a store from a newer vtn is refused in one line."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from registry.mongo import migrations as mongo_migrations
from registry.port import SERVICE
from registry.sqlite import SqliteStore
from registry.sqlite import migrations as sqlite_migrations
from tests.cli_support import VTN, assert_one_line_error, run
from tests.mongo_server import MongoServer, nx_available

FIXTURE = Path(__file__).parent / "fixtures" / "store-v0.sqlite3"


def previous_release_store(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(FIXTURE, data / "vtn.sqlite3")
    return data


async def test_previous_release_store_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = previous_release_store(tmp_path) / "vtn.sqlite3"
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 0
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == sqlite_migrations.CURRENT
        vens = await store.list_vens(SERVICE)
        assert sorted(v.ven_name for v in vens) == ["osb-00001", "osb-00002", "osb-00003"]
        assert await store.count_ders(SERVICE) == 12
        assert len(await store.read_log(after=0, limit=1000)) > 0
    finally:
        await store.close()


def test_cli_reads_a_previous_release_store(tmp_path: Path) -> None:
    data = previous_release_store(tmp_path)
    result = run(VTN, "vens", "list", "--json", "--data-dir", str(data))
    assert result.returncode == 0 and "osb-00003" in result.stdout


def test_a_store_from_a_newer_vtn_is_refused_in_one_line(tmp_path: Path) -> None:
    data = previous_release_store(tmp_path)
    db = sqlite3.connect(data / "vtn.sqlite3")
    db.execute(f"PRAGMA user_version={sqlite_migrations.CURRENT + 1}")
    db.close()
    assert_one_line_error(run(VTN, "vens", "list", "--data-dir", str(data)),
                          "newer than this vtn", "upgrade vtn")


async def test_a_new_migration_is_one_function_applied_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def v2_add_column(db: sqlite3.Connection) -> None:
        calls.append(1)
        db.execute("ALTER TABLE vens ADD COLUMN note TEXT")

    path = previous_release_store(tmp_path) / "vtn.sqlite3"
    monkeypatch.setattr(sqlite_migrations, "MIGRATIONS",
                        [*sqlite_migrations.MIGRATIONS, v2_add_column])
    monkeypatch.setattr(sqlite_migrations, "CURRENT", len(sqlite_migrations.MIGRATIONS))
    for _ in range(2):  # the second open finds version 2 and does nothing
        store = SqliteStore(path)
        await store.open()
        assert await store.schema_version() == 2
        await store.close()
    assert calls == [1]
    columns = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(vens)")]
    assert "note" in columns


async def test_mongo_database_without_version_is_migrated(tmp_path: Path) -> None:
    if not nx_available():
        pytest.skip("nx-27017 not installed and TEST_MONGO_URI not set")
    from registry.mongo import MongoStore

    server = MongoServer().start()
    try:
        url = server.url()
        store = MongoStore(url)
        await store.open()
        await store.conn.col("meta").delete_many({})  # as the previous release left it
        await store.conn.col("ders").insert_one({"_id": "d1", "device_id": "d1",
                                                 "updated_at": "2026-01-01T00:00:00Z"})
        await store.close()
        store = MongoStore(url)
        await store.open()
        assert await store.schema_version() == mongo_migrations.CURRENT
        doc = await store.conn.col("ders").find_one({"_id": "d1"})
        assert doc is not None and "updated_us" in doc  # v1's backfill ran
        await store.conn.col("meta").update_one(
            {"_id": "schema"}, {"$set": {"version": mongo_migrations.CURRENT + 1}})
        await store.close()
        with pytest.raises(mongo_migrations.SchemaTooNew):
            await MongoStore(url).open()
    finally:
        server.stop()
