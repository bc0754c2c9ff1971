"""SQLite adapter of the store port: the embedded default.

Each entity is one row holding its pydantic document as JSON plus the columns the
queries need. Fields that change often and independently (liveness, last contact,
status, last values) live in their own columns so that a status update never rewrites
metadata and a liveness sweep never races a registration.

WAL mode; ``synchronous=NORMAL`` survives a killed process (kill -9), ``FULL`` also a
power cut. Writes use ``BEGIN IMMEDIATE`` so several VTN processes can share one file.
Calls run on the event loop thread: single-row statements take microseconds, which is
cheaper than a thread hop.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from registry.discovery import (
    DerBrief,
    DerPatch,
    DerStats,
    DiscoveryQuery,
    Hit,
    LogQuery,
    Page,
    encode_cursor,
    haversine_m,
    patch_diff,
    plan,
    unpaged,
)
from registry.discovery_sql import compile_count, compile_find, scope_where
from registry.models import (
    Der,
    DerStatus,
    Liveness,
    LivenessChange,
    LogEntry,
    OutboxMessage,
    ReportRequestRecord,
    ReportRequestState,
    ReportSpec,
    ReportSubscription,
    Ven,
    View,
)
from registry.port import (
    SERVICE,
    Batch,
    Conflict,
    DerQuery,
    DerRef,
    DerStatusUpdate,
    PollState,
    Scope,
    StoreUnavailable,
    liveness_entry,
)
from registry.sqlite_views import VIEWS_SCHEMA, SqliteViews

SCHEMA = """
CREATE TABLE IF NOT EXISTS vens (
    ven_id TEXT PRIMARY KEY,
    ven_name TEXT NOT NULL UNIQUE,
    fingerprint TEXT,
    registration_id TEXT,
    aggregator_id TEXT,
    account_id TEXT,
    registered INTEGER NOT NULL DEFAULT 0,
    poll_freq_s REAL NOT NULL,
    liveness TEXT NOT NULL,
    last_seen REAL,
    offline_since REAL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS vens_fingerprint ON vens(fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX IF NOT EXISTS vens_aggregator ON vens(aggregator_id)
    WHERE aggregator_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS vens_account ON vens(account_id) WHERE account_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS vens_liveness ON vens(liveness, last_seen);

CREATE TABLE IF NOT EXISTS ders (
    device_id TEXT PRIMARY KEY,
    ven_id TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    device_name TEXT NOT NULL,
    aggregator_id TEXT,
    account_id TEXT,
    device_class TEXT NOT NULL,
    device_type TEXT NOT NULL,
    availability INTEGER NOT NULL,
    dr_availability INTEGER NOT NULL,
    marketplace_availability INTEGER NOT NULL,
    max_capacity REAL,
    available_capacity REAL,
    lat REAL,
    lon REAL,
    liveness TEXT NOT NULL,
    reported_online INTEGER,
    status TEXT NOT NULL DEFAULT '{}',
    last_values TEXT NOT NULL DEFAULT '{}',
    last_report_at REAL,
    updated_at REAL NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    doc TEXT NOT NULL,
    UNIQUE (ven_id, resource_id)
);
CREATE INDEX IF NOT EXISTS ders_aggregator ON ders(aggregator_id, device_class);
CREATE INDEX IF NOT EXISTS ders_account ON ders(account_id);
CREATE INDEX IF NOT EXISTS ders_class ON ders(device_class, max_capacity);
CREATE INDEX IF NOT EXISTS ders_liveness ON ders(liveness);
-- covers the geo prefilter, haversine and the common class / tenant filters
CREATE INDEX IF NOT EXISTS ders_geo ON ders(lat, lon, device_class, aggregator_id);
CREATE INDEX IF NOT EXISTS ders_updated ON ders(updated_at);
-- discovery sorts: an ordered scan of these stops after one page
CREATE INDEX IF NOT EXISTS ders_class_updated ON ders(device_class, updated_at);
CREATE INDEX IF NOT EXISTS ders_class_available ON ders(device_class, available_capacity);
CREATE INDEX IF NOT EXISTS ders_aggregator_capacity ON ders(aggregator_id, max_capacity);
CREATE INDEX IF NOT EXISTS ders_aggregator_name ON ders(aggregator_id, device_name);
-- der_stats reads only this index (2.1 s -> 70 ms over 1M DERs)
CREATE INDEX IF NOT EXISTS ders_stats ON ders(device_class, device_type, liveness);

CREATE TABLE IF NOT EXISTS report_specs (
    ven_id TEXT NOT NULL,
    report_specifier_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (ven_id, report_specifier_id)
);

CREATE TABLE IF NOT EXISTS report_requests (
    ven_id TEXT NOT NULL,
    report_request_id TEXT NOT NULL,
    state TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (ven_id, report_request_id)
);

CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ven_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_ven ON outbox(ven_id, seq);

CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    ven_id TEXT,
    device_id TEXT,
    aggregator_id TEXT,
    account_id TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_ven ON log(ven_id, seq);
CREATE INDEX IF NOT EXISTS log_aggregator ON log(aggregator_id, seq)
    WHERE aggregator_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS log_account ON log(account_id, seq) WHERE account_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS log_device ON log(device_id, seq) WHERE device_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS log_kind ON log(kind, seq);
"""

DER_COLUMNS = (
    "device_id, ven_id, resource_id, device_name, aggregator_id, account_id, device_class, "
    "device_type, availability, dr_availability, marketplace_availability, max_capacity, "
    "available_capacity, lat, lon, liveness, reported_online, status, last_values, "
    "last_report_at, updated_at, version, doc"
)
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


def _ts(dt: datetime | None) -> float | None:
    return dt.timestamp() if dt is not None else None


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


WAL_AUTOCHECKPOINT_PAGES = 10_000
# VENs per liveness-sweep transaction (see sweep_liveness)
SWEEP_CHUNK = 1000


class SqliteStore(SqliteViews):
    """Store port over one SQLite file."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[Batch, asyncio.Future[list[LogEntry]]]] = []

    # --- lifecycle ------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("PRAGMA foreign_keys=OFF")
        db.create_function("haversine_m", 4, haversine_m, deterministic=True)
        # discovery reads many rows: map the file instead of copying pages through read()
        db.execute("PRAGMA mmap_size=4294967296")
        db.execute("PRAGMA cache_size=-65536")
        # checkpoint every ~40 MB of WAL instead of ~4 MB: hot pages (index tails, the VEN
        # row) are copied back once per checkpoint, not once per 1000 pages, and the
        # checkpoint's fsync is paid 10x less often (registrations through the engine +49 %, see
        # docs/benchmarks.md, issue #5)
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        with _immediate(db):
            for statement in (SCHEMA + VIEWS_SCHEMA).split(";"):
                if statement.strip():
                    db.execute(statement)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreUnavailable("store is not open")
        return self._db

    # --- VENs -----------------------------------------------------------------

    def _ven(self, row: tuple[Any, ...] | None) -> Ven | None:
        if row is None:
            return None
        liveness, last_seen, offline_since, doc = row
        ven = Ven.model_validate_json(doc)
        ven.liveness = Liveness(liveness)
        ven.last_seen = _dt(last_seen)
        ven.offline_since = _dt(offline_since)
        return ven

    _VEN_SELECT = "SELECT liveness, last_seen, offline_since, doc FROM vens"

    async def get_ven(self, ven_id: str) -> Ven | None:
        row = self.db.execute(f"{self._VEN_SELECT} WHERE ven_id=?", (ven_id,)).fetchone()
        return self._ven(row)

    async def poll_state(self, ven_id: str) -> PollState | None:
        row = self.db.execute(
            "SELECT registered, fingerprint, liveness, "
            "EXISTS(SELECT 1 FROM outbox WHERE outbox.ven_id=vens.ven_id) "
            "FROM vens WHERE ven_id=?",
            (ven_id,),
        ).fetchone()
        if row is None:
            return None
        return PollState(ven_id, bool(row[0]), row[1], Liveness(row[2]), bool(row[3]))

    async def find_ven_by_name(self, ven_name: str) -> Ven | None:
        row = self.db.execute(f"{self._VEN_SELECT} WHERE ven_name=?", (ven_name,)).fetchone()
        return self._ven(row)

    async def find_ven_by_fingerprint(self, fingerprint: str) -> Ven | None:
        row = self.db.execute(
            f"{self._VEN_SELECT} WHERE fingerprint=?", (fingerprint,)
        ).fetchone()
        return self._ven(row)

    async def list_vens(self, scope: Scope) -> list[Ven]:
        where, params = _scope_where(scope)
        rows = self.db.execute(
            f"{self._VEN_SELECT} WHERE {where} ORDER BY ven_name", params
        ).fetchall()
        return [v for v in map(self._ven, rows) if v is not None]

    # --- DERs -----------------------------------------------------------------

    def _der(self, row: tuple[Any, ...]) -> Der:
        d = dict(zip(_DER_NAMES, row, strict=True))
        doc = json.loads(d["doc"])
        doc["liveness"] = d["liveness"]
        doc["status"] = json.loads(d["status"]) or {}
        doc["last_values"] = json.loads(d["last_values"])
        doc["available_capacity"] = d["available_capacity"]
        doc["version"] = d["version"]
        doc["updated_at"] = _dt(d["updated_at"])
        doc["last_report_at"] = _dt(d["last_report_at"])
        doc["availability"] = bool(d["availability"])
        doc["dr_availability"] = bool(d["dr_availability"])
        doc["marketplace_availability"] = bool(d["marketplace_availability"])
        doc["max_capacity"] = d["max_capacity"]
        doc["device_class"] = d["device_class"]
        doc["device_type"] = d["device_type"]
        doc["aggregator_id"] = d["aggregator_id"]
        doc["account_id"] = d["account_id"]
        return Der.model_validate(doc)

    async def get_der(self, device_id: str, scope: Scope) -> Der | None:
        where, params = _scope_where(scope)
        row = self.db.execute(
            f"SELECT {DER_COLUMNS} FROM ders WHERE device_id=? AND {where}",
            (device_id, *params),
        ).fetchone()
        return self._der(row) if row else None

    async def ders_of_ven(self, ven_id: str) -> list[Der]:
        rows = self.db.execute(
            f"SELECT {DER_COLUMNS} FROM ders WHERE ven_id=? ORDER BY resource_id", (ven_id,)
        ).fetchall()
        return [self._der(r) for r in rows]

    async def der_refs_of_ven(self, ven_id: str) -> list[DerRef]:
        rows = self.db.execute(
            "SELECT device_id, resource_id, aggregator_id, account_id, status FROM ders "
            "WHERE ven_id=? ORDER BY resource_id",
            (ven_id,),
        ).fetchall()
        return [
            DerRef(r[0], r[1], r[2], r[3], DerStatus.model_validate_json(r[4])) for r in rows
        ]

    async def list_ders(self, query: DerQuery, scope: Scope = SERVICE) -> list[Der]:
        where, params = _scope_where(scope)
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
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                args.extend(values)
        if query.after_device_id is not None:
            clauses.append("device_id > ?")
            args.append(query.after_device_id)
        rows = self.db.execute(
            f"SELECT {DER_COLUMNS} FROM ders WHERE {' AND '.join(clauses)} "
            "ORDER BY device_id LIMIT ?",
            (*args, query.limit),
        ).fetchall()
        return [self._der(r) for r in rows]

    async def count_ders(self, scope: Scope = SERVICE) -> int:
        where, params = _scope_where(scope)
        return self.db.execute(f"SELECT count(*) FROM ders WHERE {where}", params).fetchone()[0]

    # --- discovery (side API) ------------------------------------------------------

    async def find_ders(self, query: DiscoveryQuery, scope: Scope = SERVICE) -> Page:
        p = plan(query)
        sql, params = compile_find(query, scope, p, DER_COLUMNS)
        rows = self.db.execute(sql, params).fetchall()
        n, n_keys = len(_DER_NAMES), len(p.sort)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        names = [k for k, _ in p.sort]
        distance_at = names.index("distance_m") if "distance_m" in names else -1
        items = [
            Hit(self._der(r[:n]), r[n + distance_at] if distance_at >= 0 else None) for r in rows
        ]
        if query.near is not None and distance_at < 0:  # not sorted by distance: compute
            lat, lon = query.near
            for hit in items:
                loc = hit.der.location
                hit.distance_m = haversine_m(loc.lat, loc.lon, lat, lon) if loc else None
        cursor = encode_cursor(p.signature, list(rows[-1][n : n + n_keys])) if more else None
        total = None
        if query.total:
            count_sql, count_params = compile_count(query, scope)
            total = self.db.execute(count_sql, count_params).fetchone()[0]
        return Page(items, cursor, total)

    async def der_briefs(self, query: DiscoveryQuery, scope: Scope = SERVICE) -> list[DerBrief]:
        q = unpaged(query)
        sql, params = compile_find(q, scope, plan(q), _BRIEF_COLUMNS)
        loads = json.loads
        return [
            DerBrief(r[0], r[1], r[2], r[3], r[4], loads(r[5]) or {}, r[6], r[7], r[8], r[9])
            for r in self.db.execute(sql, params)
        ]

    async def der_stats(self, scope: Scope = SERVICE) -> DerStats:
        where, params = _scope_where(scope)
        rows = self.db.execute(
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

    async def patch_der(
        self, device_id: str, patch: DerPatch, scope: Scope = SERVICE, *, actor: str,
        if_version: int | None = None,
    ) -> Der | None:
        db = self.db
        changes = patch.changes()
        where, params = _scope_where(scope)
        with _immediate(db):
            row = db.execute(
                f"SELECT {DER_COLUMNS} FROM ders WHERE device_id=? AND {where}",
                (device_id, *params),
            ).fetchone()
            if row is None:
                return None
            der = self._der(row)
            if if_version is not None and der.version != if_version:
                raise Conflict(f"version is {der.version}, not {if_version}")
            diff = patch_diff(der, changes)
            if not diff:
                return der
            now = time.time()
            new = der.model_copy(update=changes)
            loc = new.location
            cur = db.execute(
                "UPDATE ders SET availability=?, dr_availability=?, marketplace_availability=?, "
                "device_name=?, lat=?, lon=?, updated_at=?, version=version+1, "
                "doc=json_set(doc, '$.device_name', ?, '$.location', json(?)) "
                "WHERE device_id=? AND version=?",
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
            self._append_log([
                LogEntry(
                    kind="der.changed", at=_dt(now) or datetime.now(UTC), actor=actor,
                    ven_id=der.ven_id, device_id=device_id, aggregator_id=der.aggregator_id,
                    account_id=der.account_id,
                    data={"changes": diff, "version": der.version + 1},
                )
            ])
            row = db.execute(
                f"SELECT {DER_COLUMNS} FROM ders WHERE device_id=?", (device_id,)
            ).fetchone()
            return self._der(row)

    async def find_ven(self, ven_id: str, scope: Scope = SERVICE) -> Ven | None:
        where, params = _scope_where(scope)
        row = self.db.execute(
            f"{self._VEN_SELECT} WHERE ven_id=? AND {where}", (ven_id, *params)
        ).fetchone()
        return self._ven(row)

    async def find_log(self, query: LogQuery, scope: Scope = SERVICE) -> list[LogEntry]:
        where, params = _scope_where(scope)
        clauses, args = ["seq > ?", where], [query.after, *params]
        if query.kind:
            clauses.append(f"kind IN ({','.join('?' * len(query.kind))})")
            args.extend(query.kind)
        for column in ("ven_id", "device_id"):
            value = getattr(query, column)
            if value is not None:
                clauses.append(f"{column}=?")
                args.append(value)
        rows = self.db.execute(
            f"{_LOG_SELECT} WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?",
            (*args, query.limit),
        ).fetchall()
        return [_log_entry(r) for r in rows]

    # --- reports --------------------------------------------------------------

    async def report_specs_of_ven(self, ven_id: str) -> list[ReportSpec]:
        rows = self.db.execute(
            "SELECT doc FROM report_specs WHERE ven_id=? ORDER BY report_specifier_id",
            (ven_id,),
        ).fetchall()
        return [ReportSpec.model_validate_json(r[0]) for r in rows]

    async def get_report_request(
        self, ven_id: str, report_request_id: str
    ) -> ReportRequestRecord | None:
        row = self.db.execute(
            "SELECT state, doc FROM report_requests WHERE ven_id=? AND report_request_id=?",
            (ven_id, report_request_id),
        ).fetchone()
        return _report_request(row) if row else None

    async def report_requests_of_ven(self, ven_id: str) -> list[ReportRequestRecord]:
        rows = self.db.execute(
            "SELECT state, doc FROM report_requests WHERE ven_id=? ORDER BY rowid", (ven_id,)
        ).fetchall()
        return [_report_request(r) for r in rows]

    # --- writes ---------------------------------------------------------------

    async def commit(self, batch: Batch) -> list[LogEntry]:
        """Group commit: the batches committed in one event-loop turn (concurrent
        requests) share one transaction, each in its own savepoint so a failing batch
        fails alone. The caller resumes once its batch is committed (durable as before);
        COMMIT's page writes are paid once per group instead of once per request."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[LogEntry]] = loop.create_future()
        self._pending.append((batch, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        results: list[list[LogEntry] | Exception] = []
        try:
            db = self.db
            with _immediate(db):
                if len(pending) == 1:
                    results.append(self._apply(pending[0][0]))
                else:
                    for batch, _ in pending:
                        db.execute("SAVEPOINT batch")
                        try:
                            results.append(self._apply(batch))
                        except Exception as exc:
                            db.execute("ROLLBACK TO batch")
                            results.append(exc)
                        db.execute("RELEASE batch")
        except Exception as exc:
            for _, future in pending:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(pending, results, strict=True):
            if future.done():  # the caller was cancelled; its batch is committed anyway
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _apply(self, batch: Batch) -> list[LogEntry]:
        db = self.db
        self._write_views_batch(batch)  # first: a stale announcement aborts all
        if batch.vens:
            self._write_vens(batch.vens)
        for ven_id in batch.replace_report_specs_of:
            db.execute("DELETE FROM report_specs WHERE ven_id=?", (ven_id,))
        if batch.report_specs:
            db.executemany(
                "INSERT OR REPLACE INTO report_specs VALUES (?,?,?)",
                [
                    (s.ven_id, s.report_specifier_id, s.model_dump_json())
                    for s in batch.report_specs
                ],
            )
        if batch.ders:
            self._write_ders(batch.ders)
        for chunk in _chunks(batch.delete_ders):
            db.execute(
                f"DELETE FROM ders WHERE device_id IN ({','.join('?' * len(chunk))})", chunk
            )
        if batch.der_status:
            self._write_status(batch.der_status)
        for ven_id in batch.cancel_report_requests_of:
            db.execute(
                "UPDATE report_requests SET state=?, doc=json_set(doc, '$.state', ?) "
                "WHERE ven_id=? AND state!=?",
                ("cancelled", "cancelled", ven_id, "cancelled"),
            )
        if batch.report_requests:
            self._write_report_requests(batch.report_requests)
        if batch.report_request_states:
            self._write_report_request_states(batch.report_request_states)
        for ven_id in batch.clear_outbox_of:
            db.execute("DELETE FROM outbox WHERE ven_id=?", (ven_id,))
        if batch.outbox:
            db.executemany(
                "INSERT INTO outbox (ven_id, kind, body, created_at) VALUES (?,?,?,?)",
                [(m.ven_id, m.kind, m.body, m.created_at.timestamp()) for m in batch.outbox],
            )
        entries = self._append_log(batch.log)
        for ven_id, at in batch.mark_online:
            self._mark_online(ven_id, at)
        return entries

    def _write_report_requests(self, requests: list[ReportRequestRecord]) -> None:
        self.db.executemany(
                "INSERT OR REPLACE INTO report_requests VALUES (?,?,?,?)",
                [
                    (r.ven_id, r.report_request_id, r.state.value, r.model_dump_json())
                    for r in requests
                ],
            )

    def _write_report_request_states(
        self, states: list[tuple[str, str, ReportRequestState]]
    ) -> None:
        self.db.executemany(
            "UPDATE report_requests SET state=?, doc=json_set(doc, '$.state', ?) "
            "WHERE ven_id=? AND report_request_id=?",
            [(s.value, s.value, v, r) for v, r, s in states],
        )

    def _write_vens(self, vens: list[Ven]) -> None:
        # liveness columns are owned by mark_online / sweep: only set on insert
        self.db.executemany(
            "INSERT INTO vens (ven_id, ven_name, fingerprint, registration_id, aggregator_id, "
            "account_id, registered, poll_freq_s, liveness, last_seen, offline_since, doc) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(ven_id) DO UPDATE SET "
            "ven_name=excluded.ven_name, fingerprint=excluded.fingerprint, "
            "registration_id=excluded.registration_id, aggregator_id=excluded.aggregator_id, "
            "account_id=excluded.account_id, registered=excluded.registered, "
            "poll_freq_s=excluded.poll_freq_s, doc=excluded.doc",
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
                    _ts(v.last_seen),
                    _ts(v.offline_since),
                    v.model_dump_json(),
                )
                for v in vens
            ],
        )

    def _write_ders(self, ders: list[Der]) -> None:
        self.db.executemany(
            f"INSERT INTO ders ({DER_COLUMNS}) VALUES ({','.join('?' * len(_DER_NAMES))}) "
            f"ON CONFLICT(ven_id, resource_id) DO UPDATE SET {DER_METADATA_UPDATE}",
            [_der_row(d) for d in ders],
        )

    def _write_status(self, updates: list[DerStatusUpdate]) -> None:
        rows = []
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
        # a DER that says it is offline is offline; one that says online follows its VEN
        self.db.executemany(
            "UPDATE ders SET status=coalesce(?, status), "
            "reported_online=coalesce(?, reported_online), "
            "liveness=CASE WHEN ?=0 THEN 'offline' "
            "WHEN ?=1 THEN (SELECT liveness FROM vens WHERE vens.ven_id=ders.ven_id) "
            "ELSE liveness END, "
            "last_values=json_patch(last_values, ?), "
            "max_capacity=coalesce(?, max_capacity), "
            "available_capacity=coalesce(?, available_capacity), "
            "last_report_at=?, updated_at=?, version=version+1 WHERE device_id=?",
            rows,
        )

    def _append_log(self, entries: list[LogEntry]) -> list[LogEntry]:
        """Insert in one statement; seqs are consecutive (AUTOINCREMENT, one writer holds
        the lock), so the last rowid gives them all. The entries get their seq."""
        if not entries:
            return []
        db = self.db
        rows = [
            (e.at.timestamp(), e.kind, e.actor, e.ven_id, e.device_id, e.aggregator_id,
             e.account_id, json.dumps(e.data, default=str))
            for e in entries
        ]
        sql = ("INSERT INTO log (at, kind, actor, ven_id, device_id, aggregator_id, account_id, "
               "data) VALUES (?,?,?,?,?,?,?,?)")
        if len(rows) == 1:
            last = db.execute(sql, rows[0]).lastrowid
        else:
            db.executemany(sql, rows)
            last = db.execute("SELECT last_insert_rowid()").fetchone()[0]
        assert last is not None
        for seq, e in enumerate(entries, start=last - len(entries) + 1):
            e.seq = seq
        return entries

    # --- outbox ---------------------------------------------------------------

    async def claim_next(self, ven_id: str) -> OutboxMessage | None:
        db = self.db
        while True:
            row = db.execute(
                "SELECT seq, kind, body, created_at FROM outbox WHERE ven_id=? ORDER BY seq "
                "LIMIT 1",
                (ven_id,),
            ).fetchone()
            if row is None:
                return None
            # the DELETE is the claim: only one process can remove the row
            if db.execute("DELETE FROM outbox WHERE seq=?", (row[0],)).rowcount == 1:
                return OutboxMessage(
                    ven_id=ven_id, seq=row[0], kind=row[1], body=row[2], created_at=_dt(row[3])
                )

    async def pending_count(self, ven_id: str) -> int:
        return self.db.execute(
            "SELECT count(*) FROM outbox WHERE ven_id=?", (ven_id,)
        ).fetchone()[0]

    # --- event log --------------------------------------------------------------

    async def read_log(
        self, after: int = 0, limit: int = 100, ven_id: str | None = None
    ) -> list[LogEntry]:
        sql = f"{_LOG_SELECT} WHERE seq > ?"
        params: list[Any] = [after]
        if ven_id is not None:
            sql += " AND ven_id=?"
            params.append(ven_id)
        rows = self.db.execute(f"{sql} ORDER BY seq LIMIT ?", (*params, limit)).fetchall()
        return [_log_entry(r) for r in rows]

    async def last_seq(self) -> int:
        return self.db.execute("SELECT coalesce(max(seq), 0) FROM log").fetchone()[0]

    # --- liveness ---------------------------------------------------------------

    async def touch(self, contacts: dict[str, datetime]) -> None:
        if not contacts:
            return
        with _immediate(self.db):
            self.db.executemany(
                "UPDATE vens SET last_seen=max(coalesce(last_seen, 0), ?) WHERE ven_id=?",
                [(t.timestamp(), v) for v, t in contacts.items()],
            )

    async def mark_online(self, ven_id: str, now: datetime) -> LivenessChange | None:
        with _immediate(self.db):
            return self._mark_online(ven_id, now)

    def _mark_online(self, ven_id: str, now: datetime) -> LivenessChange | None:
        """mark_online inside the caller's transaction."""
        db = self.db
        row = db.execute(
            "SELECT liveness, aggregator_id, account_id FROM vens WHERE ven_id=?", (ven_id,)
        ).fetchone()
        if row is None or row[0] == Liveness.ONLINE:
            if row is not None:
                db.execute(
                    "UPDATE vens SET last_seen=max(coalesce(last_seen, 0), ?) WHERE ven_id=?",
                    (now.timestamp(), ven_id),
                )
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
        change = LivenessChange(
            ven_id=ven_id, old=Liveness(row[0]), new=Liveness.ONLINE, ders=ders
        )
        self._append_log([liveness_entry(change, now, row[1], row[2])])
        return change

    async def sweep_liveness(
        self, now: datetime, stale_after_polls: float, offline_after_polls: float
    ) -> list[LivenessChange]:
        """Transitions are written in transactions of SWEEP_CHUNK VENs with the event loop
        free in between: a mass transition (every VEN silent after an outage, 250k VENs /
        1M DERs) no longer holds the write lock and the loop for half a minute. Each
        update re-checks its condition, so a VEN that came back meanwhile, or that another
        process already swept, is left alone (logged once)."""
        db = self.db
        t = now.timestamp()
        rows = db.execute(
            "SELECT ven_id, liveness, aggregator_id, account_id, "
            "coalesce(last_seen, 0) < ? - poll_freq_s * ? FROM vens "
            "WHERE liveness!='offline' AND coalesce(last_seen, 0) < ? - poll_freq_s * ?",
            (t, offline_after_polls, t, stale_after_polls),
        ).fetchall()
        changes: list[LivenessChange] = []
        for start in range(0, len(rows), SWEEP_CHUNK):
            if start:
                await asyncio.sleep(0)
            log_rows = []
            with _immediate(db):
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
                    ders = db.execute(
                        "UPDATE ders SET liveness=CASE WHEN reported_online=0 THEN 'offline' "
                        "ELSE ? END WHERE ven_id=?",
                        (new.value, ven_id),
                    ).rowcount
                    changes.append(
                        LivenessChange(ven_id=ven_id, old=Liveness(old), new=new, ders=ders)
                    )
                    log_rows.append((
                        t, "ven.liveness", "vtn", ven_id, None, aggregator_id, account_id,
                        json.dumps({"from": old, "to": new.value, "ders": ders}),
                    ))
                db.executemany(
                    "INSERT INTO log (at, kind, actor, ven_id, device_id, aggregator_id, "
                    "account_id, data) VALUES (?,?,?,?,?,?,?,?)",
                    log_rows,
                )
        return changes

    # --- bulk (export / import) -------------------------------------------------

    def iter_table(self, table: str) -> Iterable[tuple[Any, ...]]:
        return self.db.execute(f"SELECT * FROM {table}")

    async def iter_all(self, kind: str) -> AsyncIterator[BaseModel]:
        """Stream every record of one kind (export), in a stable order, cursor by cursor."""
        cursor = self.db.execute(_ITER_SQL[kind])
        try:
            while rows := cursor.fetchmany(1000):
                for row in rows:
                    yield self._iter_parse(kind, row)
        finally:
            cursor.close()

    def _iter_parse(self, kind: str, row: tuple[Any, ...]) -> BaseModel:
        if kind == "ven":
            ven = self._ven(row)
            assert ven is not None
            return ven
        if kind == "der":
            return self._der(row)
        if kind == "report_spec":
            return ReportSpec.model_validate_json(row[0])
        if kind == "report_request":
            return _report_request((row[0], row[1]))
        if kind == "view":
            return View.model_validate_json(row[0])
        if kind == "report_subscription":
            return ReportSubscription.model_validate_json(row[0])
        if kind == "outbox":
            return OutboxMessage(seq=row[0], ven_id=row[1], kind=row[2], body=row[3],
                                 created_at=_dt(row[4]))
        return LogEntry(seq=row[0], at=_dt(row[1]), kind=row[2], actor=row[3], ven_id=row[4],
                        device_id=row[5], aggregator_id=row[6], account_id=row[7],
                        data=json.loads(row[8]))

    # --- signature nonces (ReplayProtect) ---------------------------------------------

    async def remember_nonce(self, ven_id: str, nonce: str, expires: datetime) -> bool:
        """Insert-or-refuse on (ven_id, nonce); expired nonces are purged now and then."""
        db = self.db
        if not getattr(self, "_nonce_table", False):
            db.execute(_NONCE_TABLE)
            self._nonce_table = True
        now = datetime.now(UTC).timestamp()
        purge_at: float = getattr(self, "_nonce_purge_at", 0.0)
        with _immediate(db):
            if now >= purge_at:
                db.execute("DELETE FROM signature_nonces WHERE expires < ?", (now,))
                self._nonce_purge_at = now + 60.0
            cur = db.execute(
                "INSERT INTO signature_nonces (ven_id, nonce, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (ven_id, nonce) DO UPDATE SET expires = excluded.expires "
                "WHERE signature_nonces.expires < ?",
                (ven_id, nonce, expires.timestamp(), now),
            )
            return cur.rowcount == 1


_ITER_SQL = {
    "ven": f"{SqliteStore._VEN_SELECT} ORDER BY ven_id",
    "der": f"SELECT {DER_COLUMNS} FROM ders ORDER BY ven_id, resource_id",
    "report_spec": "SELECT doc FROM report_specs ORDER BY ven_id, report_specifier_id",
    "report_request": "SELECT state, doc FROM report_requests ORDER BY rowid",
    "view": "SELECT doc FROM views ORDER BY aggregator_id, name",
    "report_subscription": "SELECT doc FROM report_subscriptions ORDER BY rowid",
    "outbox": "SELECT seq, ven_id, kind, body, created_at FROM outbox ORDER BY seq",
    "log": "SELECT seq, at, kind, actor, ven_id, device_id, aggregator_id, account_id, data "
    "FROM log ORDER BY seq",
}


_BRIEF_COLUMNS = (
    "ders.device_id, ders.ven_id, ders.resource_id, ders.device_class, ders.liveness, "
    "ders.status, ders.max_capacity, ders.available_capacity, ders.lat, ders.lon"
)
_DER_NAMES = tuple(c.strip() for c in DER_COLUMNS.split(","))
_LOG_SELECT = (
    "SELECT seq, at, kind, actor, ven_id, device_id, aggregator_id, account_id, data FROM log"
)
_scope_where = scope_where

_NONCE_TABLE = """
CREATE TABLE IF NOT EXISTS signature_nonces (
    ven_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (ven_id, nonce)
) WITHOUT ROWID
"""


def _log_entry(r: tuple[Any, ...]) -> LogEntry:
    return LogEntry(
        seq=r[0], at=_dt(r[1]), kind=r[2], actor=r[3], ven_id=r[4], device_id=r[5],
        aggregator_id=r[6], account_id=r[7], data=json.loads(r[8]),
    )


def _der_row(d: Der) -> tuple[Any, ...]:
    return (
        d.device_id,
        d.ven_id,
        d.resource_id,
        d.device_name,
        d.aggregator_id,
        d.account_id,
        d.device_class.value,
        d.device_type.value,
        int(d.availability),
        int(d.dr_availability),
        int(d.marketplace_availability),
        d.max_capacity,
        d.available_capacity,
        d.location.lat if d.location else None,
        d.location.lon if d.location else None,
        d.liveness.value,
        None if d.status.online is None else int(d.status.online),
        d.status.model_dump_json(),
        json.dumps({k: json.loads(v.model_dump_json()) for k, v in d.last_values.items()}),
        _ts(d.last_report_at),
        d.updated_at.timestamp(),
        d.version,
        d.model_dump_json(),
    )


def _report_request(row: tuple[str, str]) -> ReportRequestRecord:
    rec = ReportRequestRecord.model_validate_json(row[1])
    rec.state = ReportRequestState(row[0])
    return rec


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction; rolled back whole on any error."""
    for attempt in range(50):
        try:
            db.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:  # locked beyond busy_timeout
            if attempt == 49:
                raise StoreUnavailable(str(exc)) from exc
            time.sleep(0.01)
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    else:
        db.execute("COMMIT")

