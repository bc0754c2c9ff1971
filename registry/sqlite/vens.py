"""VENs on SQLite: the poll hot path, lookups, scoped lists, and the batch upsert."""

from __future__ import annotations

import sqlite3

from registry.models import Liveness, Ven
from registry.port import PollState, Scope
from registry.sqlite.rows import VEN_SELECT, ts, ven_of
from registry.sqlite.scope import scope_where

_BY_ID = f"{VEN_SELECT} WHERE ven_id=?"
_BY_NAME = f"{VEN_SELECT} WHERE ven_name=?"
_BY_FINGERPRINT = f"{VEN_SELECT} WHERE fingerprint=?"
_BY_ROLE = f"{VEN_SELECT} WHERE json_extract(doc, '$.role')=? ORDER BY ven_name"
_POLL_STATE = (
    "SELECT registered, fingerprint, liveness, "
    "EXISTS(SELECT 1 FROM outbox WHERE outbox.ven_id=vens.ven_id) "
    "FROM vens WHERE ven_id=?"
)
# liveness columns are owned by mark_online / sweep: only set on insert
_UPSERT = (
    "INSERT INTO vens (ven_id, ven_name, fingerprint, registration_id, aggregator_id, "
    "account_id, registered, poll_freq_s, liveness, last_seen, offline_since, doc) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(ven_id) DO UPDATE SET "
    "ven_name=excluded.ven_name, fingerprint=excluded.fingerprint, "
    "registration_id=excluded.registration_id, aggregator_id=excluded.aggregator_id, "
    "account_id=excluded.account_id, registered=excluded.registered, "
    "poll_freq_s=excluded.poll_freq_s, doc=excluded.doc"
)


def get_ven(db: sqlite3.Connection, ven_id: str) -> Ven | None:
    return ven_of(db.execute(_BY_ID, (ven_id,)).fetchone())


def poll_state(db: sqlite3.Connection, ven_id: str) -> PollState | None:
    row = db.execute(_POLL_STATE, (ven_id,)).fetchone()
    if row is None:
        return None
    return PollState(ven_id, bool(row[0]), row[1], Liveness(row[2]), bool(row[3]))


def find_ven_by_name(db: sqlite3.Connection, ven_name: str) -> Ven | None:
    return ven_of(db.execute(_BY_NAME, (ven_name,)).fetchone())


def find_ven_by_fingerprint(db: sqlite3.Connection, fingerprint: str) -> Ven | None:
    return ven_of(db.execute(_BY_FINGERPRINT, (fingerprint,)).fetchone())


def list_vens(db: sqlite3.Connection, scope: Scope) -> list[Ven]:
    where, params = scope_where(scope)
    rows = db.execute(f"{VEN_SELECT} WHERE {where} ORDER BY ven_name", params).fetchall()
    return [v for v in map(ven_of, rows) if v is not None]


def find_ven(db: sqlite3.Connection, ven_id: str, scope: Scope) -> Ven | None:
    where, params = scope_where(scope)
    row = db.execute(f"{VEN_SELECT} WHERE ven_id=? AND {where}", (ven_id, *params)).fetchone()
    return ven_of(row)


def vens_with_role(db: sqlite3.Connection, role: str) -> list[Ven]:
    rows = db.execute(_BY_ROLE, (role,)).fetchall()
    return [v for v in map(ven_of, rows) if v is not None]


# --- inside Store.commit's transaction ------------------------------------------------


def write_vens(db: sqlite3.Connection, vens: list[Ven]) -> None:
    db.executemany(
        _UPSERT,
        [
            (
                v.ven_id,
                v.ven_name,
                v.fingerprint,
                v.registration_id,
                v.aggregator_id,
                v.account_id,
                int(v.registered),
                v.poll_freq_s,
                v.liveness.value,
                ts(v.last_seen),
                ts(v.offline_since),
                v.model_dump_json(),
            )
            for v in vens
        ],
    )
