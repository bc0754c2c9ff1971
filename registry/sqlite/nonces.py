"""Signature nonces (ReplayProtect) on SQLite: insert-or-refuse on (ven_id, nonce)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from registry.sqlite.conn import immediate
from registry.sqlite.schema import NONCE_TABLE


class Nonces:
    """Per store instance: whether the table was made, when expired nonces go next."""

    __slots__ = ("purge_at", "table")

    def __init__(self) -> None:
        self.table = False
        self.purge_at = 0.0

    def remember(self, db: sqlite3.Connection, ven_id: str, nonce: str,
                 expires: datetime) -> bool:
        """Insert-or-refuse on (ven_id, nonce); expired nonces are purged now and then."""
        if not self.table:
            db.execute(NONCE_TABLE)
            self.table = True
        now = datetime.now(UTC).timestamp()
        with immediate(db):
            if now >= self.purge_at:
                db.execute("DELETE FROM signature_nonces WHERE expires < ?", (now,))
                self.purge_at = now + 60.0
            cur = db.execute(
                "INSERT INTO signature_nonces (ven_id, nonce, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (ven_id, nonce) DO UPDATE SET expires = excluded.expires "
                "WHERE signature_nonces.expires < ?",
                (ven_id, nonce, expires.timestamp(), now),
            )
            return cur.rowcount == 1
