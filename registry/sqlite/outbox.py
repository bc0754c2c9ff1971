"""The outbox on SQLite: FIFO per VEN, each message claimed once (the DELETE is the claim)."""

from __future__ import annotations

import sqlite3

from registry.models import OutboxMessage
from registry.port import Batch
from registry.sqlite.rows import dt

_OLDEST = "SELECT seq, kind, body, created_at FROM outbox WHERE ven_id=? ORDER BY seq LIMIT 1"
_CLAIM = "DELETE FROM outbox WHERE seq=?"
_PENDING = "SELECT count(*) FROM outbox WHERE ven_id=?"


def claim_next(db: sqlite3.Connection, ven_id: str) -> OutboxMessage | None:
    while True:
        row = db.execute(_OLDEST, (ven_id,)).fetchone()
        if row is None:
            return None
        # the DELETE is the claim: only one process can remove the row
        if db.execute(_CLAIM, (row[0],)).rowcount == 1:
            return OutboxMessage(
                ven_id=ven_id, seq=row[0], kind=row[1], body=row[2], created_at=dt(row[3])
            )


def pending_count(db: sqlite3.Connection, ven_id: str) -> int:
    return db.execute(_PENDING, (ven_id,)).fetchone()[0]


# --- inside Store.commit's transaction ------------------------------------------------


def write_outbox(db: sqlite3.Connection, batch: Batch) -> None:
    """clear_outbox_of, then the new messages of the batch."""
    for ven_id in batch.clear_outbox_of:
        db.execute("DELETE FROM outbox WHERE ven_id=?", (ven_id,))
    if batch.outbox:
        db.executemany(
            "INSERT INTO outbox (ven_id, kind, body, created_at) VALUES (?,?,?,?)",
            [(m.ven_id, m.kind, m.body, m.created_at.timestamp()) for m in batch.outbox],
        )
