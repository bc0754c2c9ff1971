"""DERs on SQLite: reads, stats, the user PATCH, and the batch writes (metadata upserts,
deletes, status updates). Discovery queries are in registry.sqlite.discovery."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

from registry.discovery import DerPatch, DerStats, patch_diff
from registry.models import Der, DerStatus, LogEntry
from registry.port import Conflict, DerQuery, DerRef, DerStatusUpdate, Scope
from registry.sqlite.conn import immediate
from registry.sqlite.inlist import in_list
from registry.sqlite.log import append_log
from registry.sqlite.rows import DER_COLUMNS, DER_NAMES, chunks, der_of, der_row, dt
from registry.sqlite.scope import scope_where

# metadata a new METADATA report may change; user-set fields (flags, name, location) stay
DER_METADATA_UPDATE = (
    "device_class=excluded.device_class, device_type=excluded.device_type, "
    "max_capacity=coalesce(excluded.max_capacity, max_capacity), "
    "aggregator_id=excluded.aggregator_id, "
    "account_id=excluded.account_id, updated_at=excluded.updated_at, version=version+1, "
    "lat=coalesce(lat, excluded.lat), lon=coalesce(lon, excluded.lon), "
    "doc=json_set(excluded.doc, '$.device_name', json_extract(doc, '$.device_name'), "
    "'$.location', json(coalesce(json_extract(doc, '$.location'), "
    "json_extract(excluded.doc, '$.location'), 'null')), "
    "'$.availability', json(CASE availability WHEN 1 THEN 'true' ELSE 'false' END), "
    "'$.dr_availability', json(CASE dr_availability WHEN 1 THEN 'true' ELSE 'false' END), "
    "'$.marketplace_availability', "
    "json(CASE marketplace_availability WHEN 1 THEN 'true' ELSE 'false' END), "
    "'$.device_id', device_id, '$.created_at', json_extract(doc, '$.created_at'))"
)
_UPSERT = (
    f"INSERT INTO ders ({DER_COLUMNS}) VALUES ({','.join('?' * len(DER_NAMES))}) "
    f"ON CONFLICT(ven_id, resource_id) DO UPDATE SET {DER_METADATA_UPDATE}"
)
_OF_VEN = f"SELECT {DER_COLUMNS} FROM ders WHERE ven_id=? ORDER BY resource_id"
_BY_ID = f"SELECT {DER_COLUMNS} FROM ders WHERE device_id=?"
_REFS_OF_VEN = (
    "SELECT device_id, resource_id, aggregator_id, account_id, status FROM ders "
    "WHERE ven_id=? ORDER BY resource_id"
)
# a DER that says it is offline is offline; one that says online follows its VEN
_STATUS = (
    "UPDATE ders SET status=coalesce(?, status), "
    "reported_online=coalesce(?, reported_online), "
    "liveness=CASE WHEN ?=0 THEN 'offline' "
    "WHEN ?=1 THEN (SELECT liveness FROM vens WHERE vens.ven_id=ders.ven_id) "
    "ELSE liveness END, "
    "last_values=json_patch(last_values, ?), "
    "max_capacity=coalesce(?, max_capacity), "
    "available_capacity=coalesce(?, available_capacity), "
    "last_report_at=?, updated_at=?, version=version+1 WHERE device_id=?"
)
_PATCH = (
    "UPDATE ders SET availability=?, dr_availability=?, marketplace_availability=?, "
    "device_name=?, lat=?, lon=?, updated_at=?, version=version+1, "
    "doc=json_set(doc, '$.device_name', ?, '$.location', json(?)) "
    "WHERE device_id=? AND version=?"
)


def get_der(db: sqlite3.Connection, device_id: str, scope: Scope) -> Der | None:
    where, params = scope_where(scope)
    row = db.execute(
        f"SELECT {DER_COLUMNS} FROM ders WHERE device_id=? AND {where}",
        (device_id, *params),
    ).fetchone()
    return der_of(row) if row else None


def ders_of_ven(db: sqlite3.Connection, ven_id: str) -> list[Der]:
    return [der_of(r) for r in db.execute(_OF_VEN, (ven_id,)).fetchall()]


def der_refs_of_ven(db: sqlite3.Connection, ven_id: str) -> list[DerRef]:
    rows = db.execute(_REFS_OF_VEN, (ven_id,)).fetchall()
    return [DerRef(r[0], r[1], r[2], r[3], DerStatus.model_validate_json(r[4])) for r in rows]


def list_ders(db: sqlite3.Connection, query: DerQuery, scope: Scope) -> list[Der]:
    where, params = scope_where(scope)
    clauses, args = [where], list(params)
    for column, value in (
        ("ven_id", query.ven_id),
        ("aggregator_id", query.aggregator_id),
        ("account_id", query.account_id),
    ):
        if value is not None:
            clauses.append(f"{column}=?")
            args.append(value)
    for column, values in (
        ("device_class", query.device_class),
        ("device_type", query.device_type),
        ("liveness", query.liveness),
    ):
        if values:
            clause, params = in_list(column, list(values))
            clauses.append(clause)
            args.extend(params)
    if query.after_device_id is not None:
        clauses.append("device_id > ?")
        args.append(query.after_device_id)
    rows = db.execute(
        f"SELECT {DER_COLUMNS} FROM ders WHERE {' AND '.join(clauses)} "
        "ORDER BY device_id LIMIT ?",
        (*args, query.limit),
    ).fetchall()
    return [der_of(r) for r in rows]


def count_ders(db: sqlite3.Connection, scope: Scope) -> int:
    where, params = scope_where(scope)
    return db.execute(f"SELECT count(*) FROM ders WHERE {where}", params).fetchone()[0]


def der_stats(db: sqlite3.Connection, scope: Scope) -> DerStats:
    where, params = scope_where(scope)
    rows = db.execute(
        "SELECT device_class, device_type, liveness, count(*) FROM ders "
        f"WHERE {where} GROUP BY 1, 2, 3",
        params,
    ).fetchall()
    stats = DerStats(total=0)
    for device_class, device_type, liveness, n in rows:
        stats.total += n
        for bucket, key in (
            (stats.by_class, device_class),
            (stats.by_type, device_type),
            (stats.by_liveness, liveness),
        ):
            bucket[key] = bucket.get(key, 0) + n
    return stats


def patch_der(
    db: sqlite3.Connection, device_id: str, patch: DerPatch, scope: Scope, actor: str,
    if_version: int | None,
) -> Der | None:
    changes = patch.changes()
    where, params = scope_where(scope)
    with immediate(db):
        row = db.execute(
            f"SELECT {DER_COLUMNS} FROM ders WHERE device_id=? AND {where}",
            (device_id, *params),
        ).fetchone()
        if row is None:
            return None
        der = der_of(row)
        if if_version is not None and der.version != if_version:
            raise Conflict(f"version is {der.version}, not {if_version}")
        diff = patch_diff(der, changes)
        if not diff:
            return der
        now = time.time()
        new = der.model_copy(update=changes)
        loc = new.location
        cur = db.execute(
            _PATCH,
            (
                int(new.availability), int(new.dr_availability),
                int(new.marketplace_availability), new.device_name,
                loc.lat if loc else None, loc.lon if loc else None, now,
                new.device_name, loc.model_dump_json() if loc else "null",
                device_id, der.version,
            ),
        )
        if cur.rowcount != 1:  # another process won between SELECT and UPDATE
            raise Conflict("DER changed concurrently")
        append_log(db, [
            LogEntry(
                kind="der.changed", at=dt(now) or datetime.now(UTC), actor=actor,
                ven_id=der.ven_id, device_id=device_id, aggregator_id=der.aggregator_id,
                account_id=der.account_id,
                data={"changes": diff, "version": der.version + 1},
            )
        ])
        return der_of(db.execute(_BY_ID, (device_id,)).fetchone())


# --- inside Store.commit's transaction ------------------------------------------------


def write_ders(db: sqlite3.Connection, ders: list[Der]) -> None:
    db.executemany(_UPSERT, [der_row(d) for d in ders])


def delete_ders(db: sqlite3.Connection, device_ids: list[str]) -> None:
    for chunk in chunks(device_ids):
        db.execute(f"DELETE FROM ders WHERE device_id IN ({','.join('?' * len(chunk))})", chunk)


def write_status(db: sqlite3.Connection, updates: list[DerStatusUpdate]) -> None:
    rows: list[tuple[Any, ...]] = []
    for u in updates:
        values = {
            k: {"value": v.value, "at": v.at.isoformat(), "report_type": v.report_type,
                "units": v.units}
            for k, v in u.values.items()
        }
        status = u.status.model_dump_json() if u.status is not None else None
        online = None if u.status is None or u.status.online is None else int(u.status.online)
        rows.append(
            (
                status,
                online,
                online,
                online,
                json.dumps(values),
                u.max_capacity,
                u.available_capacity,
                u.at.timestamp(),
                u.at.timestamp(),
                u.device_id,
            )
        )
    db.executemany(_STATUS, rows)
