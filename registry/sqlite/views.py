"""Report subscriptions and metadata announcements on SQLite (discovery over
OpenADR): reads, claiming due reports, and the batch writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime

from registry.models import ReportSubscription, SubscriptionState
from registry.port import ANY, Batch, Conflict
from registry.sqlite.conn import immediate
from registry.sqlite.rows import ts

_ACTIVE = SubscriptionState.ACTIVE.value


def subscriptions_of_ven(db: sqlite3.Connection, ven_id: str) -> list[ReportSubscription]:
    rows = db.execute(
        "SELECT doc FROM report_subscriptions WHERE ven_id=? ORDER BY rowid", (ven_id,)
    ).fetchall()
    return [ReportSubscription.model_validate_json(r[0]) for r in rows]


def claim_due_reports(
    db: sqlite3.Connection, now: datetime, limit: int
) -> list[ReportSubscription]:
    claimed: list[ReportSubscription] = []
    with immediate(db):  # one writer at a time: each claim is taken once
        rows = db.execute(
            "SELECT doc FROM report_subscriptions WHERE state=? AND next_due<=? "
            "ORDER BY next_due LIMIT ?",
            (_ACTIVE, now.timestamp(), limit),
        ).fetchall()
        for (doc,) in rows:
            sub = ReportSubscription.model_validate_json(doc).claimed(now)
            _upsert_subscriptions(db, [sub])
            claimed.append(sub)
    return claimed


def announced_hash(db: sqlite3.Connection, ven_id: str) -> str | None:
    row = db.execute("SELECT hash FROM announcements WHERE ven_id=?", (ven_id,)).fetchone()
    return row[0] if row else None


# --- inside Store.commit's transaction ------------------------------------------------


def write_views(db: sqlite3.Connection, batch: Batch) -> None:
    """Apply the discovery-over-OpenADR parts of a batch; announcements first (may Conflict)."""
    for ven_id, expected, new in batch.announce:
        if expected == ANY:
            db.execute(
                "INSERT INTO announcements VALUES (?, ?) "
                "ON CONFLICT(ven_id) DO UPDATE SET hash=excluded.hash",
                (ven_id, new),
            )
        elif expected is None:
            cur = db.execute(
                "INSERT INTO announcements VALUES (?, ?) ON CONFLICT DO NOTHING",
                (ven_id, new),
            )
            if cur.rowcount != 1:
                raise Conflict(f"metadata of {ven_id} was announced meanwhile")
        elif db.execute(
            "UPDATE announcements SET hash=? WHERE ven_id=? AND hash=?",
            (new, ven_id, expected),
        ).rowcount != 1:
            raise Conflict(f"metadata of {ven_id} was announced meanwhile")
    for ven_id in batch.cancel_subscriptions_of:
        _set_states(
            db,
            (
                (s.ven_id, s.report_request_id, SubscriptionState.CANCELLED)
                for s in _open_subscriptions(db, ven_id)
            ),
        )
    if batch.subscriptions:
        _upsert_subscriptions(db, batch.subscriptions)
    if batch.subscription_states:
        _set_states(db, batch.subscription_states)


def _open_subscriptions(db: sqlite3.Connection, ven_id: str) -> list[ReportSubscription]:
    rows = db.execute(
        "SELECT doc FROM report_subscriptions WHERE ven_id=? AND state=?", (ven_id, _ACTIVE)
    ).fetchall()
    return [ReportSubscription.model_validate_json(r[0]) for r in rows]


def _set_states(
    db: sqlite3.Connection, states: Iterable[tuple[str, str, SubscriptionState]]
) -> None:
    db.executemany(
        "UPDATE report_subscriptions SET state=?, "
        "next_due=CASE WHEN ?='active' THEN next_due END, "
        "doc=json_set(doc, '$.state', ?, '$.next_due_at', "
        "CASE WHEN ?='active' THEN json_extract(doc, '$.next_due_at') END) "
        "WHERE ven_id=? AND report_request_id=?",
        [(s.value, s.value, s.value, s.value, v, r) for v, r, s in states],
    )


def _upsert_subscriptions(db: sqlite3.Connection, subs: list[ReportSubscription]) -> None:
    db.executemany(
        # an upsert, not REPLACE: the rowid (the order they were requested in) stays
        "INSERT INTO report_subscriptions VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (ven_id, report_request_id) DO UPDATE SET state=excluded.state, "
        "next_due=excluded.next_due, doc=excluded.doc",
        [
            (s.ven_id, s.report_request_id, s.state.value, ts(s.next_due_at),
             s.model_dump_json())
            for s in subs
        ],
    )
