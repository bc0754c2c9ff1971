"""Job leases on SQLite (registry.port.leases): one row per lease in ``job_leases``.

Every change is one ``BEGIN IMMEDIATE`` transaction, and SQLite has one writer at a time,
so an acquire and a fenced commit (``check_fence`` inside the commit's transaction) are
serialised: a commit either sees its token current or fails with LeaseLost.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from registry.port.leases import Fencing, Lease, LeaseLost, fences_of
from registry.sqlite.conn import immediate


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _lease(row: tuple[str, str, int, int]) -> Lease:
    job, holder, token, expires_us = row
    return Lease(job, holder, int(token),
                 datetime.fromtimestamp(expires_us / 1_000_000, UTC))


def acquire(db: sqlite3.Connection, job: str, holder: str, ttl_s: float,
            now: datetime) -> Lease | None:
    expires = _us(now + timedelta(seconds=ttl_s))
    with immediate(db):
        row = db.execute("SELECT holder, token, expires_us FROM job_leases WHERE job=?",
                         (job,)).fetchone()
        if row is None:
            db.execute("INSERT INTO job_leases VALUES (?, ?, 1, ?)", (job, holder, expires))
            return _lease((job, holder, 1, expires))
        old_holder, token, old_expires = row
        if old_holder == holder:
            token = int(token)
        elif old_expires <= _us(now):
            token = int(token) + 1
        else:
            return None
        db.execute("UPDATE job_leases SET holder=?, token=?, expires_us=? WHERE job=?",
                   (holder, token, expires, job))
        return _lease((job, holder, token, expires))


def renew(db: sqlite3.Connection, lease: Lease, ttl_s: float, now: datetime) -> Lease | None:
    expires = _us(now + timedelta(seconds=ttl_s))
    with immediate(db):
        n = db.execute(
            "UPDATE job_leases SET expires_us=? WHERE job=? AND holder=? AND token=?",
            (expires, lease.job, lease.holder, lease.token)).rowcount
    return _lease((lease.job, lease.holder, lease.token, expires)) if n == 1 else None


def release(db: sqlite3.Connection, lease: Lease) -> None:
    with immediate(db):
        db.execute("UPDATE job_leases SET expires_us=0 WHERE job=? AND holder=? AND token=?",
                   (lease.job, lease.holder, lease.token))


def list_leases(db: sqlite3.Connection, prefix: str) -> list[Lease]:
    rows = db.execute(
        "SELECT job, holder, token, expires_us FROM job_leases "
        "WHERE substr(job, 1, ?) = ? ORDER BY job", (len(prefix), prefix)).fetchall()
    return [_lease(r) for r in rows]


def check_fence(db: sqlite3.Connection, fencing: Fencing) -> None:
    """Inside the caller's transaction: LeaseLost unless every fence's token is current."""
    for fence in fences_of(fencing):
        row = db.execute("SELECT token FROM job_leases WHERE job=?", (fence.job,)).fetchone()
        if row is None or int(row[0]) != fence.token:
            raise LeaseLost(f"lease {fence.job!r} token {fence.token} is no longer current")
