"""Delivery targets and per-VEN push leases on SQLite (registry.port.delivery).

Every lease change is one conditional statement, so two processes on one file settle a
race in the database: the upsert that takes an expired lease matches for one of them.
``ack_delivered`` is a DELETE whose condition names the lease's token, atomic with it.
"""

from __future__ import annotations

import sqlite3

from registry.models import OutboxMessage
from registry.port import Batch
from registry.port.delivery import DeliveryTarget, PushLease
from registry.sqlite.rows import dt

_CANDIDATES = (
    "SELECT t.ven_id, t.transport, t.address FROM delivery_targets t "
    "WHERE t.transport=? AND EXISTS (SELECT 1 FROM outbox o WHERE o.ven_id=t.ven_id) "
    "AND NOT EXISTS (SELECT 1 FROM push_leases l WHERE l.ven_id=t.ven_id AND l.until>?) "
    "LIMIT ?"
)
_TAKE = (
    "INSERT INTO push_leases (ven_id, holder, token, until, attempts) VALUES (?,?,1,?,0) "
    "ON CONFLICT(ven_id) DO UPDATE SET holder=excluded.holder, token=push_leases.token+1, "
    "until=excluded.until WHERE push_leases.until<=?"
)
_LEASE = "SELECT ven_id, holder, token, until, attempts FROM push_leases WHERE ven_id=?"
_OLDEST = "SELECT seq, kind, body, created_at FROM outbox WHERE ven_id=? ORDER BY seq LIMIT 1"
_ACK = (
    "DELETE FROM outbox WHERE seq=? AND ven_id=? AND EXISTS (SELECT 1 FROM push_leases "
    "WHERE ven_id=? AND holder=? AND token=?)"
)


def delivery_candidates(
    db: sqlite3.Connection, transport: str, now: float, limit: int
) -> list[DeliveryTarget]:
    rows = db.execute(_CANDIDATES, (transport, now, limit)).fetchall()
    return [DeliveryTarget(*r) for r in rows]


def delivery_target(db: sqlite3.Connection, ven_id: str) -> DeliveryTarget | None:
    row = db.execute("SELECT ven_id, transport, address FROM delivery_targets WHERE ven_id=?",
                     (ven_id,)).fetchone()
    return DeliveryTarget(*row) if row else None


def acquire_push_lease(
    db: sqlite3.Connection, ven_id: str, holder: str, now: float, ttl_s: float
) -> PushLease | None:
    if db.execute(_TAKE, (ven_id, holder, now + ttl_s, now)).rowcount != 1:
        return None
    row = db.execute(_LEASE, (ven_id,)).fetchone()
    return PushLease(*row) if row and row[1] == holder else None


def renew_push_lease(
    db: sqlite3.Connection, lease: PushLease, until: float, attempts: int | None
) -> PushLease | None:
    tries = lease.attempts if attempts is None else attempts
    cur = db.execute(
        "UPDATE push_leases SET until=?, attempts=? WHERE ven_id=? AND holder=? AND token=?",
        (until, tries, lease.ven_id, lease.holder, lease.token))
    if cur.rowcount != 1:
        return None
    return PushLease(lease.ven_id, lease.holder, lease.token, until, tries)


def release_push_lease(db: sqlite3.Connection, lease: PushLease) -> None:
    db.execute("UPDATE push_leases SET until=0 WHERE ven_id=? AND holder=? AND token=?",
               (lease.ven_id, lease.holder, lease.token))


def peek_next(db: sqlite3.Connection, ven_id: str) -> OutboxMessage | None:
    row = db.execute(_OLDEST, (ven_id,)).fetchone()
    if row is None:
        return None
    return OutboxMessage(ven_id=ven_id, seq=row[0], kind=row[1], body=row[2],
                         created_at=dt(row[3]))


def ack_delivered(db: sqlite3.Connection, lease: PushLease, seq: int) -> bool:
    args = (seq, lease.ven_id, lease.ven_id, lease.holder, lease.token)
    return db.execute(_ACK, args).rowcount == 1


# --- inside Store.commit's transaction ------------------------------------------------


def write_targets(db: sqlite3.Connection, batch: Batch) -> None:
    """drop_delivery_targets, then the upserts (a lease row is left alone)."""
    for ven_id in batch.drop_delivery_targets:
        db.execute("DELETE FROM delivery_targets WHERE ven_id=?", (ven_id,))
    if batch.delivery_targets:
        db.executemany(
            "INSERT INTO delivery_targets (ven_id, transport, address) VALUES (?,?,?) "
            "ON CONFLICT(ven_id) DO UPDATE SET transport=excluded.transport, "
            "address=excluded.address",
            [(t.ven_id, t.transport, t.address) for t in batch.delivery_targets])
