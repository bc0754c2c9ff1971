"""Report specs and report requests on SQLite: reads and the batch writes."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from registry.models import ReportRequestRecord, ReportRequestState, ReportSpec, fixed_time
from registry.port import Batch, Conflict, TelemetryBucket
from registry.sqlite.rows import chunks, report_request

_SPECS_OF_VEN = "SELECT doc FROM report_specs WHERE ven_id=? ORDER BY report_specifier_id"
_REQUEST = "SELECT state, doc FROM report_requests WHERE ven_id=? AND report_request_id=?"
_REQUESTS_OF_VEN = "SELECT state, doc FROM report_requests WHERE ven_id=? ORDER BY rowid"
_NEXT = "json_extract(doc, '$.next_check_at')"  # the expression of report_requests_due
_DUE = (
    f"SELECT state, doc FROM report_requests WHERE {_NEXT} <= ? AND state IN "
    f"('pending','active','overdue','silent','cancel_pending') ORDER BY {_NEXT} LIMIT ?"
)
_UNSETTLED = "('pending','overdue','silent')"
_SEEN = (
    "UPDATE report_requests SET "
    f"state=CASE WHEN state IN {_UNSETTLED} THEN 'active' ELSE state END, "
    "doc=json_set(doc, "
    f"'$.state', CASE WHEN state IN {_UNSETTLED} THEN 'active' ELSE state END, "
    "'$.acknowledged_at', coalesce(json_extract(doc, '$.acknowledged_at'), ?), "
    "'$.next_check_at', ?, '$.rev', coalesce(json_extract(doc, '$.rev'), 0) + 1{data}) "
    "WHERE ven_id=? AND report_request_id=?"
)
_SEEN_ACK = _SEEN.format(data="")
_SEEN_DATA = _SEEN.format(data=", '$.last_report_at', ?")
_UPDATE_IF = (
    "UPDATE report_requests SET state=?, doc=? WHERE ven_id=? AND report_request_id=? "
    "AND state=? AND coalesce(json_extract(doc, '$.rev'), 0)=?"
)


def report_specs_of_ven(db: sqlite3.Connection, ven_id: str) -> list[ReportSpec]:
    rows = db.execute(_SPECS_OF_VEN, (ven_id,)).fetchall()
    return [ReportSpec.model_validate_json(r[0]) for r in rows]


def get_report_request(
    db: sqlite3.Connection, ven_id: str, report_request_id: str
) -> ReportRequestRecord | None:
    row = db.execute(_REQUEST, (ven_id, report_request_id)).fetchone()
    return report_request(row) if row else None


def report_requests_of_ven(db: sqlite3.Connection, ven_id: str) -> list[ReportRequestRecord]:
    return [report_request(r) for r in db.execute(_REQUESTS_OF_VEN, (ven_id,)).fetchall()]


def due_report_requests(
    db: sqlite3.Connection, now: datetime, limit: int
) -> list[ReportRequestRecord]:
    return [report_request(r) for r in db.execute(_DUE, (fixed_time(now), limit)).fetchall()]


def telemetry_history(
    db: sqlite3.Connection, device_ids: list[str], start: datetime, end: datetime
) -> list[TelemetryBucket]:
    out: list[TelemetryBucket] = []
    for chunk in chunks(sorted(set(device_ids))):
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            "SELECT device_id, r_id, bucket, sum_w, n FROM der_history "
            f"WHERE device_id IN ({marks}) AND bucket>=? AND bucket<? ORDER BY device_id, bucket",
            (*chunk, start.timestamp(), end.timestamp()),
        ).fetchall()
        out.extend(
            TelemetryBucket(d, r, datetime.fromtimestamp(b, UTC), s, n) for d, r, b, s, n in rows
        )
    return out


# --- inside Store.commit's transaction ------------------------------------------------


def write_specs(db: sqlite3.Connection, batch: Batch) -> None:
    """replace_report_specs_of, then the report_specs of the batch."""
    for ven_id in batch.replace_report_specs_of:
        db.execute("DELETE FROM report_specs WHERE ven_id=?", (ven_id,))
    if batch.report_specs:
        db.executemany(
            "INSERT OR REPLACE INTO report_specs VALUES (?,?,?)",
            [(s.ven_id, s.report_specifier_id, s.model_dump_json()) for s in batch.report_specs],
        )


def write_requests(db: sqlite3.Connection, batch: Batch) -> None:
    """cancel_report_requests_of, then report_requests, then report_request_states."""
    for ven_id in batch.cancel_report_requests_of:
        db.execute(
            "UPDATE report_requests SET state=?, "
            "doc=json_set(doc, '$.state', ?, '$.next_check_at', NULL) "
            "WHERE ven_id=? AND state!=?",
            ("cancelled", "cancelled", ven_id, "cancelled"),
        )
    if batch.report_requests:
        db.executemany(
            "INSERT OR REPLACE INTO report_requests VALUES (?,?,?,?)",
            [
                (r.ven_id, r.report_request_id, r.state.value, r.model_dump_json())
                for r in batch.report_requests
            ],
        )
    if batch.report_request_states:
        _write_states(db, batch.report_request_states)
    for rec, state, rev in batch.report_request_updates:
        cur = db.execute(_UPDATE_IF, (
            rec.state.value, rec.model_dump_json(), rec.ven_id, rec.report_request_id,
            state.value, rev,
        ))
        if cur.rowcount != 1:
            raise Conflict(f"report request {rec.report_request_id} changed meanwhile")
    for ven_id, rr_id, at, data, nxt in batch.report_request_seen:
        iso = at.isoformat()
        check = fixed_time(nxt) if nxt is not None else None
        if data:
            db.execute(_SEEN_DATA, (iso, check, iso, ven_id, rr_id))
        else:
            db.execute(_SEEN_ACK, (iso, check, ven_id, rr_id))


def write_telemetry(db: sqlite3.Connection, batch: Batch) -> None:
    if batch.telemetry:
        db.executemany(
            "INSERT INTO der_history VALUES (?,?,?,?,?) ON CONFLICT(device_id, bucket, r_id) "
            "DO UPDATE SET sum_w=sum_w+excluded.sum_w, n=n+excluded.n",
            [(t.device_id, t.bucket.timestamp(), t.r_id, t.sum_w, t.count)
             for t in batch.telemetry],
        )
    if batch.prune_telemetry_before is not None:
        db.execute("DELETE FROM der_history WHERE bucket<?",
                   (batch.prune_telemetry_before.timestamp(),))


def _write_states(
    db: sqlite3.Connection, states: list[tuple[str, str, ReportRequestState]]
) -> None:
    db.executemany(
        "UPDATE report_requests SET state=?, doc=json_set(doc, '$.state', ?, '$.next_check_at', "
        "CASE WHEN ?='cancelled' THEN NULL ELSE json_extract(doc, '$.next_check_at') END, "
        "'$.rev', coalesce(json_extract(doc, '$.rev'), 0) + 1) "
        "WHERE ven_id=? AND report_request_id=?",
        [(s.value, s.value, s.value, v, r) for v, r, s in states],
    )
