"""Dashboard aggregates on SQLite (see registry.port.overview): GROUP BY queries on the
ders, vens and log tables with the scope in the WHERE clause."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from registry.discovery import DiscoveryQuery, LogQuery
from registry.models import LogEntry
from registry.port import Scope
from registry.port.overview import DerPoint, FleetOverview, add_group
from registry.sqlite.discovery import compile_where
from registry.sqlite.inlist import in_list
from registry.sqlite.log import log_filters
from registry.sqlite.rows import LOG_SELECT, log_entry
from registry.sqlite.scope import scope_where


def fleet_overview(db: sqlite3.Connection, scope: Scope, since: datetime, kinds: list[str]
                   ) -> FleetOverview:
    where, params = scope_where(scope)
    ov = FleetOverview()
    for row in db.execute(
        "SELECT device_class, device_type, liveness, count(*), sum(max_capacity), "
        f"sum(available_capacity) FROM ders WHERE {where} GROUP BY 1, 2, 3", params,
    ):
        add_group(ov, *row)
    for liveness, n in db.execute(
        f"SELECT liveness, count(*) FROM vens WHERE {where} GROUP BY 1", params
    ):
        ov.vens_by_liveness[liveness] = n
    if kinds:
        clause, kind_params = in_list("kind", kinds)
        for kind, n in db.execute(
            f"SELECT kind, count(*) FROM log WHERE {clause} AND at >= ? AND {where} "
            "GROUP BY 1", (*kind_params, since.timestamp(), *params),
        ):
            ov.log_counts[kind] = n
    return ov


def der_points(db: sqlite3.Connection, query: DiscoveryQuery, scope: Scope) -> list[DerPoint]:
    sql = compile_where(query, scope)
    return db.execute(  # the ders_points index covers the unfiltered / liveness / class map
        "SELECT device_id, lat, lon, liveness, device_class FROM ders "
        f"WHERE lat IS NOT NULL AND {sql.where}", sql.params,
    ).fetchall()


def recent_log(db: sqlite3.Connection, query: LogQuery, scope: Scope) -> list[LogEntry]:
    clauses, args = log_filters(query, scope)
    rows = db.execute(
        f"{LOG_SELECT} WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT ?",
        (*args, query.limit),
    ).fetchall()
    return [log_entry(r) for r in rows]


def outbox_pending(db: sqlite3.Connection, ven_ids: list[str], scope: Scope) -> dict[str, int]:
    if not ven_ids:
        return {}
    where, params = scope_where(scope)
    clause, id_params = in_list("ven_id", sorted(set(ven_ids)))
    rows = db.execute(
        f"SELECT ven_id, count(*) FROM outbox WHERE {clause} AND ven_id IN "
        f"(SELECT ven_id FROM vens WHERE {where}) GROUP BY 1", (*id_params, *params),
    )
    return {v: n for v, n in rows}
