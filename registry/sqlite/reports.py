"""Report specs and report requests on SQLite: reads and the batch writes."""

from __future__ import annotations

import sqlite3

from registry.models import ReportRequestRecord, ReportRequestState, ReportSpec
from registry.port import Batch
from registry.sqlite.rows import report_request

_SPECS_OF_VEN = "SELECT doc FROM report_specs WHERE ven_id=? ORDER BY report_specifier_id"
_REQUEST = "SELECT state, doc FROM report_requests WHERE ven_id=? AND report_request_id=?"
_REQUESTS_OF_VEN = "SELECT state, doc FROM report_requests WHERE ven_id=? ORDER BY rowid"


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
            "UPDATE report_requests SET state=?, doc=json_set(doc, '$.state', ?) "
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


def _write_states(
    db: sqlite3.Connection, states: list[tuple[str, str, ReportRequestState]]
) -> None:
    db.executemany(
        "UPDATE report_requests SET state=?, doc=json_set(doc, '$.state', ?) "
        "WHERE ven_id=? AND report_request_id=?",
        [(s.value, s.value, v, r) for v, r, s in states],
    )
