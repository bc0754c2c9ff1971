"""Numbered schema migrations of the MongoDB store, kept in the ``meta`` collection
(``{_id: "schema", version: N}``).

Indexes are created idempotently on every open (registry.mongo.schema); a migration is
for what that cannot do (a backfill, a renamed field, a dropped index). To add one,
append an async function to :data:`MIGRATIONS`. Each must be idempotent: several VTN
processes may open the database at once and run it concurrently; the version only moves
forward (``$max``). Version 1 is the first versioned release; a database without the
document (and with data) is the release before it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from registry.mongo.conn import MongoConn
from registry.mongo.ders import backfill_updated_us
from registry.port import StoreError

log = logging.getLogger(__name__)
Migration = Callable[[MongoConn], Awaitable[None]]
_ID = {"_id": "schema"}


async def _v1_updated_us(c: MongoConn) -> None:
    """DERs written before discovery sorted on updated_us get the field."""
    await backfill_updated_us(c)


# MIGRATIONS[i] brings the database from version i to i + 1
MIGRATIONS: list[Migration] = [_v1_updated_us]
CURRENT = len(MIGRATIONS)


class SchemaTooNew(StoreError):
    """The database was written by a newer vtn."""


async def version_of(c: MongoConn) -> int:
    doc = await c.retry(lambda: c.col("meta").find_one(_ID))
    return int(doc["version"]) if doc else 0


async def migrate(c: MongoConn) -> tuple[int, int]:
    found = await version_of(c)
    if found > CURRENT:
        raise SchemaTooNew(f"store schema version {found} is newer than this vtn's "
                           f"({CURRENT}): upgrade vtn, or restore a backup")
    for target in range(found + 1, CURRENT + 1):
        await MIGRATIONS[target - 1](c)
        await c.retry(lambda t=target: c.col("meta").update_one(
            _ID, {"$max": {"version": t}}, upsert=True))
        log.info("store schema migrated to version %d (%s)", target,
                 MIGRATIONS[target - 1].__name__)
    return found, await version_of(c)
