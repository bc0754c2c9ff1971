"""SQLite persistence of views, report subscriptions and metadata announcements.

Mixed into :class:`registry.sqlite_store.SqliteStore`; kept apart because these tables
serve one feature (discovery over OpenADR) and the core store module is big enough.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from registry.models import ReportSubscription, SubscriptionState, Ven, View
from registry.port import ANY, Batch, Conflict, Scope, views_in_scope

VIEWS_SCHEMA = """
CREATE TABLE IF NOT EXISTS views (
    aggregator_id TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (aggregator_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS report_subscriptions (
    ven_id TEXT NOT NULL,
    report_request_id TEXT NOT NULL,
    state TEXT NOT NULL,
    next_due REAL,
    doc TEXT NOT NULL,
    PRIMARY KEY (ven_id, report_request_id)
);
CREATE INDEX IF NOT EXISTS report_subscriptions_due ON report_subscriptions(state, next_due);
CREATE TABLE IF NOT EXISTS announcements (
    ven_id TEXT PRIMARY KEY,
    hash TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vens_role ON vens(json_extract(doc, '$.role'));
"""

_ACTIVE = SubscriptionState.ACTIVE.value


def _ts(dt: datetime | None) -> float | None:
    return dt.timestamp() if dt is not None else None


class SqliteViews:
    """Views, subscriptions and announcements; needs ``self.db`` (a sqlite3 connection)."""

    db: sqlite3.Connection
    _VEN_SELECT: str

    if TYPE_CHECKING:  # provided by SqliteStore
        def _ven(self, row: tuple[Any, ...] | None) -> Ven | None: ...

    async def vens_with_role(self, role: str) -> list[Ven]:
        rows = self.db.execute(
            f"{self._VEN_SELECT} WHERE json_extract(doc, '$.role')=? ORDER BY ven_name", (role,)
        ).fetchall()
        return [v for v in map(self._ven, rows) if v is not None]

    async def list_views(self, scope: Scope, aggregator_id: str | None = None) -> list[View]:
        visible, aggregator_id = views_in_scope(scope, aggregator_id)
        if not visible:
            return []
        if aggregator_id is None:
            rows = self.db.execute("SELECT doc FROM views ORDER BY aggregator_id, name")
        else:
            rows = self.db.execute(
                "SELECT doc FROM views WHERE aggregator_id=? ORDER BY name", (aggregator_id,)
            )
        return [View.model_validate_json(r[0]) for r in rows.fetchall()]

    async def get_view(self, aggregator_id: str, name: str) -> View | None:
        row = self.db.execute(
            "SELECT doc FROM views WHERE aggregator_id=? AND name=?", (aggregator_id, name)
        ).fetchone()
        return View.model_validate_json(row[0]) if row else None

    async def subscriptions_of_ven(self, ven_id: str) -> list[ReportSubscription]:
        rows = self.db.execute(
            "SELECT doc FROM report_subscriptions WHERE ven_id=? ORDER BY rowid", (ven_id,)
        ).fetchall()
        return [ReportSubscription.model_validate_json(r[0]) for r in rows]

    async def claim_due_reports(
        self, now: datetime, limit: int = 100
    ) -> list[ReportSubscription]:
        from registry.sqlite_store import _immediate

        db = self.db
        claimed: list[ReportSubscription] = []
        with _immediate(db):  # one writer at a time: each claim is taken once
            rows = db.execute(
                "SELECT doc FROM report_subscriptions WHERE state=? AND next_due<=? "
                "ORDER BY next_due LIMIT ?",
                (_ACTIVE, now.timestamp(), limit),
            ).fetchall()
            for (doc,) in rows:
                sub = ReportSubscription.model_validate_json(doc).claimed(now)
                self._upsert_subscriptions([sub])
                claimed.append(sub)
        return claimed

    async def announced_hash(self, ven_id: str) -> str | None:
        row = self.db.execute(
            "SELECT hash FROM announcements WHERE ven_id=?", (ven_id,)
        ).fetchone()
        return row[0] if row else None

    # --- inside Store.commit's transaction ------------------------------------------

    def _write_views_batch(self, batch: Batch) -> None:
        """Apply the view-related parts of a batch; announcements first (may Conflict)."""
        db = self.db
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
        if batch.views:
            db.executemany(
                "INSERT OR REPLACE INTO views VALUES (?, ?, ?)",
                [(v.aggregator_id, v.name, v.model_dump_json()) for v in batch.views],
            )
        if batch.delete_views:
            db.executemany(
                "DELETE FROM views WHERE aggregator_id=? AND name=?", batch.delete_views
            )
        for ven_id in batch.cancel_subscriptions_of:
            self._set_states(
                (s.ven_id, s.report_request_id, SubscriptionState.CANCELLED)
                for s in self._open_subscriptions(ven_id)
            )
        if batch.subscriptions:
            self._upsert_subscriptions(batch.subscriptions)
        if batch.subscription_states:
            self._set_states(batch.subscription_states)

    def _open_subscriptions(self, ven_id: str) -> list[ReportSubscription]:
        rows = self.db.execute(
            "SELECT doc FROM report_subscriptions WHERE ven_id=? AND state=?", (ven_id, _ACTIVE)
        ).fetchall()
        return [ReportSubscription.model_validate_json(r[0]) for r in rows]

    def _set_states(self, states: Iterable[tuple[str, str, SubscriptionState]]) -> None:
        self.db.executemany(
            "UPDATE report_subscriptions SET state=?, "
            "next_due=CASE WHEN ?='active' THEN next_due END, "
            "doc=json_set(doc, '$.state', ?, '$.next_due_at', "
            "CASE WHEN ?='active' THEN json_extract(doc, '$.next_due_at') END) "
            "WHERE ven_id=? AND report_request_id=?",
            [(s.value, s.value, s.value, s.value, v, r) for v, r, s in states],
        )

    def _upsert_subscriptions(self, subs: list[ReportSubscription]) -> None:
        self.db.executemany(
            # an upsert, not REPLACE: the rowid (the order they were requested in) stays
            "INSERT INTO report_subscriptions VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (ven_id, report_request_id) DO UPDATE SET state=excluded.state, "
            "next_due=excluded.next_due, doc=excluded.doc",
            [
                (s.ven_id, s.report_request_id, s.state.value, _ts(s.next_due_at),
                 s.model_dump_json())
                for s in subs
            ],
        )
