"""Liveness on SQLite: contacts (touch), coming online, the stale / offline sweep."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime

from registry.models import Liveness, LivenessChange
from registry.port import liveness_entry
from registry.port.leases import HEX, Fencing, Shard
from registry.sqlite.conn import immediate
from registry.sqlite.leases import check_fence
from registry.sqlite.log import INSERT_LOG, append_log

# VENs per liveness-sweep transaction (see sweep_liveness)
SWEEP_CHUNK = 1000

_TOUCH = "UPDATE vens SET last_seen=max(coalesce(last_seen, 0), ?) WHERE ven_id=?"
_DERS_FOLLOW = (
    "UPDATE ders SET liveness=CASE WHEN reported_online=0 THEN 'offline' "
    "ELSE ? END WHERE ven_id=?"
)


def touch(db: sqlite3.Connection, contacts: dict[str, datetime]) -> None:
    if not contacts:
        return
    with immediate(db):
        db.executemany(_TOUCH, [(t.timestamp(), v) for v, t in contacts.items()])


def mark_online(db: sqlite3.Connection, ven_id: str, now: datetime) -> LivenessChange | None:
    """mark_online inside the caller's transaction."""
    row = db.execute(
        "SELECT liveness, aggregator_id, account_id FROM vens WHERE ven_id=?", (ven_id,)
    ).fetchone()
    if row is None or row[0] == Liveness.ONLINE:
        if row is not None:
            db.execute(_TOUCH, (now.timestamp(), ven_id))
        return None
    db.execute(
        "UPDATE vens SET liveness='online', last_seen=?, offline_since=NULL "
        "WHERE ven_id=?",
        (now.timestamp(), ven_id),
    )
    ders = db.execute(
        "UPDATE ders SET liveness=CASE WHEN reported_online=0 THEN 'offline' "
        "ELSE 'online' END WHERE ven_id=?",
        (ven_id,),
    ).rowcount
    change = LivenessChange(ven_id=ven_id, old=Liveness(row[0]), new=Liveness.ONLINE, ders=ders)
    append_log(db, [liveness_entry(change, now, row[1], row[2])])
    return change


def shard_sql(shard: Shard | None) -> tuple[str, tuple[object, ...]]:
    """The condition of one VEN shard (registry.port.leases.shard_of), and its values."""
    if shard is None or shard.count <= 1:
        return "", ()
    h1 = "instr(?, substr(ven_id, -2, 1))"
    h2 = "instr(?, substr(ven_id, -1))"
    last = "unicode(substr(ven_id, -1))"
    sql = (f" AND (CASE WHEN length(ven_id) >= 2 AND {h1} > 0 AND {h2} > 0"
           f" THEN (({h1} - 1) % 16 * 16 + ({h2} - 1) % 16) % ?"
           f" WHEN {last} < 128 THEN {last} % ? ELSE 0 END)"
           f" IN ({', '.join('?' * len(shard.indices))})")
    n = shard.count
    return sql, (HEX, HEX, HEX, HEX, n, n, *shard.indices)


async def sweep_liveness(
    db: sqlite3.Connection, now: datetime, stale_after_polls: float,
    offline_after_polls: float, shard: Shard | None = None, fence: Fencing = None,
) -> list[LivenessChange]:
    """Transitions are written in transactions of SWEEP_CHUNK VENs with the event loop
    free in between: a mass transition (every VEN silent after an outage, 250k VENs /
    1M DERs) no longer holds the write lock and the loop for half a minute. Each
    update re-checks its condition, so a VEN that came back meanwhile, or that another
    process already swept, is left alone (logged once).

    With a shard only its VENs are swept; with a fence each chunk's transaction first
    checks the lease is still ours (LeaseLost, the chunks before stay committed)."""
    t = now.timestamp()
    where, values = shard_sql(shard)
    rows = db.execute(
        "SELECT ven_id, liveness, aggregator_id, account_id, "
        "coalesce(last_seen, 0) < ? - poll_freq_s * ? FROM vens "
        "WHERE liveness!='offline' AND coalesce(last_seen, 0) < ? - poll_freq_s * ?"
        + where,
        (t, offline_after_polls, t, stale_after_polls, *values),
    ).fetchall()
    changes: list[LivenessChange] = []
    for start in range(0, len(rows), SWEEP_CHUNK):
        if start:
            await asyncio.sleep(0)
        log_rows = []
        with immediate(db):
            check_fence(db, fence)
            for ven_id, old, aggregator_id, account_id, is_offline in rows[
                start : start + SWEEP_CHUNK
            ]:
                new = Liveness.OFFLINE if is_offline else Liveness.STALE
                if new == old:
                    continue
                polls = offline_after_polls if is_offline else stale_after_polls
                if db.execute(
                    "UPDATE vens SET liveness=?, offline_since=? WHERE ven_id=? "
                    "AND liveness=? AND coalesce(last_seen, 0) < ? - poll_freq_s * ?",
                    (new.value, t if new == Liveness.OFFLINE else None, ven_id, old, t,
                     polls),
                ).rowcount != 1:
                    continue
                ders = db.execute(_DERS_FOLLOW, (new.value, ven_id)).rowcount
                changes.append(
                    LivenessChange(ven_id=ven_id, old=Liveness(old), new=new, ders=ders)
                )
                log_rows.append((
                    t, "ven.liveness", "vtn", ven_id, None, aggregator_id, account_id,
                    json.dumps({"from": old, "to": new.value, "ders": ders}),
                ))
            db.executemany(INSERT_LOG, log_rows)
    return changes
