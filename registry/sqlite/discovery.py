"""Discovery (side API) on SQLite: compile a :class:`DiscoveryQuery` to parameterised
SQL over the ``ders`` table, and run it (``find_ders``, ``der_briefs``).

Only names from the whitelists below ever become SQL text; every value is a parameter.
Geo: a bounding box on the ``(lat, lon)`` index narrows candidates, then the registered
``haversine_m`` function gives the exact distance used for filtering and sorting.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from registry.discovery import (
    DerBrief,
    DiscoveryQuery,
    Hit,
    Page,
    Plan,
    encode_cursor,
    haversine_m,
    plan,
    radius_box,
    unpaged,
)
from registry.port import Scope
from registry.sqlite.inlist import in_list
from registry.sqlite.opts import NOT_OPTED_OUT
from registry.sqlite.rows import DER_COLUMNS, DER_NAMES, der_of, us
from registry.sqlite.scope import scope_where

# API field -> column (the whitelist; distance_m is computed)
COLUMNS = {
    "device_id": "device_id",
    "device_name": "device_name",
    "ven_id": "ven_id",
    "device_class": "device_class",
    "device_type": "device_type",
    "liveness": "liveness",
    "max_capacity": "max_capacity",
    "available_capacity": "available_capacity",
    "updated_at": "updated_at",
    "aggregator_id": "aggregator_id",
    "account_id": "account_id",
    "availability": "availability",
    "dr_availability": "dr_availability",
    "marketplace_availability": "marketplace_availability",
}
DISTANCE = "haversine_m(lat, lon, ?, ?)"


@dataclass
class Sql:
    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    @property
    def where(self) -> str:
        return " AND ".join(self.clauses) or "1=1"


def compile_where(query: DiscoveryQuery, scope: Scope, first_sort: str | None = None) -> Sql:
    """WHERE clause. Range filters on a column other than the first sort key are written
    ``+column`` so SQLite walks a sort index and stops after one page instead of
    collecting every row of a wide range and sorting it (the common case for capacity
    windows; a very narrow window with another sort reads further)."""
    sql = Sql()
    where, params = scope_where(scope)
    sql.add(where, *params)
    for name in ("device_class", "device_type", "ven_id", "aggregator_id", "account_id",
                 "liveness"):
        values = getattr(query, name)
        if values:
            values = [str(v) for v in values]
            clause, params = in_list(COLUMNS[name], values)
            sql.add(clause, *params)
    for name in ("availability", "dr_availability", "marketplace_availability"):
        flag = getattr(query, name)
        if flag is not None:
            sql.add(f"{COLUMNS[name]}=?", int(flag))
    for name in ("max_capacity", "available_capacity"):
        low, high = getattr(query, f"{name}_min"), getattr(query, f"{name}_max")
        column = _ranged(COLUMNS[name], first_sort)
        if low is not None:
            sql.add(f"{column}>=?", low)
        if high is not None:
            sql.add(f"{column}<=?", high)
    if query.updated_since is not None:
        # stored as a float of seconds; a DER's own updated_at (as the API returned it, in
        # microseconds) may round half a microsecond above it: compare with that slack
        sql.add(f"{_ranged('updated_at', first_sort)}>=?",
                query.updated_since.timestamp() - 5e-7)
    if query.available_at is not None:
        at = us(query.available_at)
        sql.add(f"availability=1 AND dr_availability=1 AND {NOT_OPTED_OUT}", at, at)
    if query.q is not None:
        escaped = query.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql.add("device_name LIKE ? ESCAPE '\\'", f"%{escaped}%")
    if query.bbox is not None:
        _box(sql, *query.bbox)
    if query.near is not None and query.radius_m is not None:
        lat, lon = query.near
        _box(sql, *radius_box(lat, lon, query.radius_m))
        sql.add(f"{DISTANCE}<=?", lat, lon, query.radius_m)
    return sql


def _ranged(column: str, first_sort: str | None) -> str:
    return column if first_sort in (None, "device_id", column) else f"+{column}"


def _box(sql: Sql, lat0: float, lon0: float, lat1: float, lon1: float) -> None:
    sql.add("lat BETWEEN ? AND ?", lat0, lat1)
    if lon0 <= -180.0 and lon1 >= 180.0:
        return
    if lon0 < -180.0:
        lon0 += 360.0
    if lon1 > 180.0:
        lon1 -= 360.0
    if lon0 <= lon1:
        sql.add("lon BETWEEN ? AND ?", lon0, lon1)
    else:  # crosses the antimeridian
        sql.add("(lon>=? OR lon<=?)", lon0, lon1)


def _expr(name: str, query: DiscoveryQuery) -> tuple[str, list[Any]]:
    if name == "distance_m":
        assert query.near is not None
        return DISTANCE, list(query.near)
    return COLUMNS[name], []


def compile_find(
    query: DiscoveryQuery, scope: Scope, plan: Plan, select: str
) -> tuple[str, list[Any]]:
    """SELECT of one page (limit+1 rows to learn whether another page follows).

    The sort values of each row are appended as extra columns, for the next cursor.
    """
    sql = compile_where(query, scope, plan.sort[0][0])
    exprs = [(_expr(name, query), desc) for name, desc in plan.sort]
    if plan.after is not None:
        _keyset(sql, exprs, plan.after)
    head_params: list[Any] = []
    keys, order, outer = [], [], []
    for i, ((expr, params), desc) in enumerate(exprs):
        keys.append(f"{expr} AS k{i}")
        head_params.extend(params)
        order.append(f"k{i} {'DESC' if desc else 'ASC'}")
        outer.append(f"page.k{i} {'DESC' if desc else 'ASC'}")
    # deferred join: sort only rowids and keys, read whole rows for the one page
    inner = (
        f"SELECT rowid AS rid, {', '.join(keys)} FROM {_source(query)} WHERE {sql.where} "
        f"ORDER BY {', '.join(order)} LIMIT ?"
    )
    text = (
        f"SELECT {select}, {', '.join(f'page.k{i}' for i in range(len(exprs)))} "
        f"FROM ({inner}) AS page JOIN ders ON ders.rowid = page.rid ORDER BY {', '.join(outer)}"
    )
    return text, [*head_params, *sql.params, query.limit + 1]


def _keyset(sql: Sql, exprs: list[tuple[tuple[str, list[Any]], bool]], after: tuple) -> None:
    """Rows strictly after ``after`` in the sort order (SQLite sorts NULL lowest)."""
    ors: list[str] = []
    params: list[Any] = []
    for i, ((expr, eparams), desc) in enumerate(exprs):
        parts: list[str] = []
        for j, ((prev, pparams), _) in enumerate(exprs[:i]):
            parts.append(f"{prev} IS ?")
            params.extend([*pparams, after[j]])
        value = after[i]
        if value is None:
            if desc:
                continue  # NULLs come last in descending order: nothing after them
            parts.append(f"{expr} IS NOT NULL")
            params.extend(eparams)
        elif desc:
            parts.append(f"({expr}<? OR {expr} IS NULL)")
            params.extend([*eparams, value, *eparams])
        else:
            parts.append(f"{expr}>?")
            params.extend([*eparams, value])
        ors.append("(" + " AND ".join(parts) + ")")
    sql.add("(" + (" OR ".join(ors) or "0=1") + ")", *params)


def compile_count(query: DiscoveryQuery, scope: Scope) -> tuple[str, list[Any]]:
    sql = compile_where(query, scope)
    return f"SELECT count(*) FROM {_source(query)} WHERE {sql.where}", sql.params


def _source(query: DiscoveryQuery) -> str:
    """Geo queries always start from the (lat, lon, ...) index: a 5 km box is far more
    selective than any tenant or class index, which the planner cannot know."""
    if query.near is not None or query.bbox is not None:
        return "ders INDEXED BY ders_geo"
    return "ders"


BRIEF_COLUMNS = (
    "ders.device_id, ders.ven_id, ders.resource_id, ders.device_class, ders.liveness, "
    "ders.status, ders.max_capacity, ders.available_capacity, ders.lat, ders.lon"
)


def find_ders(db: sqlite3.Connection, query: DiscoveryQuery, scope: Scope) -> Page:
    p = plan(query)
    sql, params = compile_find(query, scope, p, DER_COLUMNS)
    rows = db.execute(sql, params).fetchall()
    n, n_keys = len(DER_NAMES), len(p.sort)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    names = [k for k, _ in p.sort]
    distance_at = names.index("distance_m") if "distance_m" in names else -1
    items = [Hit(der_of(r[:n]), r[n + distance_at] if distance_at >= 0 else None) for r in rows]
    if query.near is not None and distance_at < 0:  # not sorted by distance: compute
        lat, lon = query.near
        for hit in items:
            loc = hit.der.location
            hit.distance_m = haversine_m(loc.lat, loc.lon, lat, lon) if loc else None
    cursor = encode_cursor(p.signature, list(rows[-1][n : n + n_keys])) if more else None
    total = None
    if query.total:
        count_sql, count_params = compile_count(query, scope)
        total = db.execute(count_sql, count_params).fetchone()[0]
    return Page(items, cursor, total)


def der_briefs(db: sqlite3.Connection, query: DiscoveryQuery, scope: Scope) -> list[DerBrief]:
    q = unpaged(query)
    sql, params = compile_find(q, scope, plan(q), BRIEF_COLUMNS)
    loads = json.loads
    return [
        DerBrief(r[0], r[1], r[2], r[3], r[4], loads(r[5]) or {}, r[6], r[7], r[8], r[9])
        for r in db.execute(sql, params)
    ]
