"""Signature nonces (ReplayProtect) on MongoDB: insert-or-refuse on the unique
(ven_id, nonce) index; a TTL index (registry.mongo.schema) deletes expired ones."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from registry.mongo.conn import MongoConn
from registry.port import Conflict

NONCES = "signature_nonces"


async def remember_nonce(c: MongoConn, ven_id: str, nonce: str, expires: datetime) -> bool:
    """Insert-or-refuse on the unique (ven_id, nonce) index.

    A nonce that is there but expired (the TTL monitor deletes within a minute or so)
    is taken over by deleting it conditionally on its expiry and inserting again: of
    several processes doing so at once, one insert wins and the others see the key.
    """
    coll = c.col(NONCES)
    doc = {"ven_id": ven_id, "nonce": nonce, "expires_at": expires}

    async def insert() -> bool:
        try:
            await c.retry(lambda: coll.insert_one(dict(doc)))
            return True
        except (DuplicateKeyError, Conflict):
            return False

    for _ in range(3):
        if await insert():
            return True
        now = datetime.now(UTC)
        res = await c.retry(lambda n=now: coll.delete_one(
            {"ven_id": ven_id, "nonce": nonce, "expires_at": {"$lt": n}}))
        if res.deleted_count != 1:
            # not expired: seen before (unless it vanished meanwhile; one more try)
            return await insert()
    return False
