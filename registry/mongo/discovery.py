"""Discovery (side API) on MongoDB: compile a :class:`DiscoveryQuery` to filters over the
``ders`` collection, and run it (``find_ders``, ``der_briefs``).

The counterpart of ``registry.sqlite.discovery``, answering every query with the same DERs
in the same order (the contract tests run both). Only names from the whitelist below
become field paths; every value stays a value. The tenant scope is the first condition
of every filter.

The portable path uses only operators that nx-27017 (the test server) and real MongoDB
both implement; on a server that has them (``registry.mongo.caps``), ``near`` queries use
``$geoWithin`` / ``$geoNear`` over the 2dsphere index instead (``registry.mongo.geo``):

* portable geo (nx-27017 has no ``$geoNear`` / ``$geoWithin``): a lat/lon box on
  ``location.lat`` / ``location.lon`` (``$gte`` / ``$lte``, the ``location`` index) narrows
  the candidates, then the exact haversine distance is computed in Python with the same
  function SQLite registers (``registry.discovery.haversine_m``), so distances, radius
  filtering and distance order are identical on both backends;
* "is null" is written ``{"$in": [None]}``: nx-27017 does not match an explicit null with
  ``{field: None}`` inside ``$or``;
* the name match is a regular expression with ASCII-only case folding (``[aA]``), which is
  what SQLite's ``LIKE`` does (``i`` would also fold non-ASCII letters);
* sort order: both sort null lowest ascending and last descending, as SQLite does, and
  compare strings by code point.

``updated_at`` is an ISO-8601 string in the documents (an exact round trip); filters and
sorts use ``updated_us`` kept next to it: integer microseconds since the epoch, which
order exactly as SQLite's epoch-seconds column does for microsecond datetimes. Not a
float: nx-27017 keeps 15 significant digits of a double (~10 µs at today's epoch), so
``updated_since`` equal to a DER's own ``updated_at`` could miss it there.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
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
)
from registry.mongo import geo
from registry.mongo.conn import MongoConn
from registry.mongo.docs import der_of, epoch_us
from registry.mongo.opts import opted_out
from registry.mongo.scope import and_, scope_filter
from registry.port import Scope

Doc = dict[str, Any]

# API field -> document path (the whitelist; distance_m is computed)
PATHS = {
    "device_id": "device_id",
    "device_name": "device_name",
    "ven_id": "ven_id",
    "device_class": "device_class",
    "device_type": "device_type",
    "liveness": "liveness",
    "max_capacity": "max_capacity",
    "available_capacity": "available_capacity",
    "updated_at": "updated_us",
    "aggregator_id": "aggregator_id",
    "account_id": "account_id",
    "availability": "availability",
    "dr_availability": "dr_availability",
    "marketplace_availability": "marketplace_availability",
}
LAT, LON = "location.lat", "location.lon"
DISTANCE = "distance_m"
# what a Der needs to validate, whatever ``fields`` asks for
_REQUIRED = ("device_id", "ven_id", "resource_id", "device_name")


def compile_filter(query: DiscoveryQuery, scope: Scope, geo_mode: str = "box") -> Doc:
    """The filter of the query inside the scope (no keyset condition, no exact radius).

    geo_mode, for ``near``: "box" (the lat/lon box of the circle, any server), "circle"
    ($geoWithin on the 2dsphere index, registry.mongo.geo) or "none" ($geoNear's query:
    the stage itself bounds the radius)."""
    parts: list[Doc] = [scope_filter(scope)]
    for name in ("device_class", "device_type", "ven_id", "aggregator_id", "account_id",
                 "liveness"):
        values = getattr(query, name)
        if values:
            parts.append({PATHS[name]: {"$in": [str(v) for v in values]}})
    if query.available_at is not None:  # the optOut part: opted_out (find_ders)
        parts += [{"availability": True}, {"dr_availability": True}]
    for name in ("availability", "dr_availability", "marketplace_availability"):
        flag = getattr(query, name)
        if flag is not None:
            # nx-27017 stores a $set boolean as 1/0 and matches True/False against it
            parts.append({PATHS[name]: flag})
    for name in ("max_capacity", "available_capacity"):
        low, high = getattr(query, f"{name}_min"), getattr(query, f"{name}_max")
        if low is not None:
            parts.append({PATHS[name]: {"$gte": low}})
        if high is not None:
            parts.append({PATHS[name]: {"$lte": high}})
    if query.updated_since is not None:
        parts.append({PATHS["updated_at"]: {"$gte": epoch_us(query.updated_since)}})
    if query.q is not None:
        parts.append({"device_name": {"$regex": like_pattern(query.q)}})
    if query.bbox is not None:
        parts.extend(_box(*query.bbox))
    if query.near is not None and query.radius_m is not None:
        if geo_mode == "circle":
            parts.append(geo.within_circle(query.near, query.radius_m))
        elif geo_mode == "box":
            parts.extend(_box(*radius_box(query.near[0], query.near[1], query.radius_m)))
    return and_(parts)


def _box(lat0: float, lon0: float, lat1: float, lon1: float) -> list[Doc]:
    """The same box as ``registry.sqlite.discovery._box`` (antimeridian-aware)."""
    parts: list[Doc] = [{LAT: {"$gte": lat0, "$lte": lat1}}]
    if lon0 <= -180.0 and lon1 >= 180.0:
        return parts
    if lon0 < -180.0:
        lon0 += 360.0
    if lon1 > 180.0:
        lon1 -= 360.0
    if lon0 <= lon1:
        parts.append({LON: {"$gte": lon0, "$lte": lon1}})
    else:  # crosses the antimeridian
        parts.append({"$or": [{LON: {"$gte": lon0}}, {LON: {"$lte": lon1}}]})
    return parts


_REGEX_SPECIAL = frozenset("()[]{}?*+-|^$\\.&~# \t\n\r\v\f/")


def like_pattern(text: str) -> str:
    """A regex for SQLite's ``LIKE '%text%'``: a literal substring, ASCII case-insensitive."""
    out = []
    for ch in text:
        if ch.isascii() and ch.isalpha():
            out.append(f"[{ch.lower()}{ch.upper()}]")
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


# --- sort and keyset ---------------------------------------------------------------------


def sort_paths(plan: Plan) -> list[tuple[str, bool]]:
    """(document path or distance_m, descending) for each sort key of the plan."""
    return [(DISTANCE if name == DISTANCE else PATHS[name], desc) for name, desc in plan.sort]


def mongo_sort(plan: Plan) -> list[tuple[str, int]]:
    """The ``sort`` argument (only for plans without distance_m)."""
    return [(path, -1 if desc else 1) for path, desc in sort_paths(plan)]


def _is_null(path: str) -> Doc:
    return {path: {"$in": [None]}}


def _equal(path: str, value: Any) -> Doc:
    return _is_null(path) if value is None else {path: value}


def keyset_filter(plan: Plan) -> Doc | None:
    """Documents strictly after ``plan.after`` in the sort order (null sorts lowest), the
    same disjunction as ``registry.sqlite.discovery._keyset``. None when the plan has no cursor.

    Nullable sort keys (the capacities) are always present in DER documents (written as
    null), so ``$ne: null`` means "has a value" on both servers.
    """
    if plan.after is None:
        return None
    keys = sort_paths(plan)
    ors: list[Doc] = []
    for i, (path, desc) in enumerate(keys):
        parts = [_equal(prev, plan.after[j]) for j, (prev, _) in enumerate(keys[:i])]
        value = plan.after[i]
        if value is None:
            if desc:
                continue  # nulls come last in descending order: nothing after them
            parts.append({path: {"$ne": None}})
        elif desc:
            parts.append({"$or": [{path: {"$lt": value}}, _is_null(path)]})
        else:
            parts.append({path: {"$gt": value}})
        ors.append(and_(parts))
    if not ors:
        return {"_id": {"$in": []}}  # nothing comes after
    return ors[0] if len(ors) == 1 else {"$or": ors}


def _get(doc: Doc, path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def sort_values(doc: Doc, keys: Sequence[tuple[str, bool]], distance: float | None
                ) -> list[Any]:
    """The sort values of one document (what the next cursor carries)."""
    return [distance if path == DISTANCE else _get(doc, path) for path, _ in keys]


def _compare_one(a: Any, b: Any) -> int:
    if a == b:  # also None == None
        return 0
    if a is None:
        return -1
    if b is None:
        return 1
    return -1 if a < b else 1


def compare(keys: Sequence[tuple[str, bool]]) -> Callable[[Sequence[Any], Sequence[Any]], int]:
    """Three-way comparison of sort-value rows in the plan's order (null lowest)."""

    def cmp(a: Sequence[Any], b: Sequence[Any]) -> int:
        for (_, desc), x, y in zip(keys, a, b, strict=True):
            c = _compare_one(x, y)
            if c:
                return -c if desc else c
        return 0

    return cmp


# --- geo ---------------------------------------------------------------------------------


def distance_of(doc: Doc, near: Sequence[float]) -> float | None:
    """Exact distance of a DER document from the centre (None without a location)."""
    loc = doc.get("location")
    if not isinstance(loc, dict):
        return None
    return haversine_m(loc.get("lat"), loc.get("lon"), near[0], near[1])


def within(distance: float | None, radius_m: float) -> bool:
    return distance is not None and distance <= radius_m


@dataclass(frozen=True, slots=True)
class GeoRow:
    values: list[Any]  # sort values
    device_id: str
    distance: float | None


def page_by_distance(docs: list[Doc], query: DiscoveryQuery, plan: Plan) -> list[GeoRow]:
    """Sort slim candidate documents in Python (the plan sorts by distance_m): radius
    filter, keyset, order; at most limit + 1 rows."""
    assert query.near is not None and query.radius_m is not None
    keys = sort_paths(plan)
    cmp = compare(keys)
    rows: list[GeoRow] = []
    for doc in docs:
        dist = distance_of(doc, query.near)
        if not within(dist, query.radius_m):
            continue
        values = sort_values(doc, keys, dist)
        if plan.after is not None and cmp(values, plan.after) <= 0:
            continue
        rows.append(GeoRow(values, doc["device_id"], dist))
    rows.sort(key=functools.cmp_to_key(lambda a, b: cmp(a.values, b.values)))
    return rows[: query.limit + 1]


# --- projection --------------------------------------------------------------------------


def projection(query: DiscoveryQuery, plan: Plan) -> Doc | None:
    """With ``fields``, only what the items show plus what a Der and the cursor need.

    Fields left out take their model defaults in the returned Der (the API shows only
    the requested ones). None: whole documents.
    """
    if not query.fields:
        return None
    wanted = {f for f in query.fields if f != DISTANCE}
    wanted.update(_REQUIRED)
    wanted.update(path.split(".")[0] for path, _ in sort_paths(plan) if path != DISTANCE)
    if query.near is not None:
        wanted.add("location")
    return {name: 1 for name in sorted(wanted)}


def slim_projection(plan: Plan) -> Doc:
    """What distance ordering needs of each candidate: id, location, sort values."""
    fields = {"device_id", "location"}
    fields.update(path.split(".")[0] for path, _ in sort_paths(plan) if path != DISTANCE)
    return {name: 1 for name in sorted(fields)}


# --- running it --------------------------------------------------------------------------
#
# Three ways to answer ``find_ders`` (nx-27017 has no ``$geoNear``, see above):
#
# * no ``near``: one ``find`` with filter, keyset condition, sort and ``limit + 1``;
# * ``near`` sorted by other keys: the same ``find`` with the lat/lon box of the circle,
#   streamed until ``limit + 1`` documents lie inside the exact radius;
# * ``near`` sorted by ``distance_m``: every candidate in the box is read slim (id,
#   location, sort keys), measured, ordered and cut in Python, then the page's documents
#   are read by ``device_id``.


async def find_ders(c: MongoConn, query: DiscoveryQuery, scope: Scope) -> Page:
    """One keyset page (see above). With ``fields``, the DERs carry only those fields (and
    what a Der requires); the others take their defaults."""
    p = plan(query)  # CursorError for a cursor of another query
    return await c.retry(lambda: _find_ders(c, query, scope, p))


async def _find_ders(c: MongoConn, query: DiscoveryQuery, scope: Scope, p: Plan) -> Page:
    native = c.caps.geo and query.near is not None and query.radius_m is not None
    geo_near = native and geo.native_distance_order(p) and not query.total
    flt = compile_filter(query, scope, "none" if geo_near else "circle" if native else "box")
    if query.available_at is not None:
        flt = and_([flt, await opted_out(c, query.available_at)])
    keys = sort_paths(p)
    ders = c.col("ders")
    last: list[Any] | None = None
    if any(path == DISTANCE for path, _ in keys):
        candidates: list[Doc] = []
        if geo_near:  # nearest first from the server: read only what the page needs
            rows = await _nearest(c, query, p, flt)
        else:
            candidates = await ders.find(flt, slim_projection(p)).to_list()
            rows = page_by_distance(candidates, query, p)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        ids = [r.device_id for r in rows]
        by_id = {}
        if ids:
            docs = await ders.find(and_([scope_filter(scope), {"device_id": {"$in": ids}}]),
                                   projection(query, p)).to_list()
            by_id = {d["device_id"]: d for d in docs}
        # a DER deleted (or moved out of the scope) between the two reads is left out
        items = [Hit(der_of(by_id[r.device_id]), r.distance)
                 for r in rows if r.device_id in by_id]
        if more:
            last = rows[-1].values
        total = None
        if query.total:
            total = sum(1 for d in candidates
                        if within(distance_of(d, query.near or []), query.radius_m or 0))
        return Page(items, _cursor(p, last), total)

    cursor = ders.find(and_([flt, keyset_filter(p) or {}]), projection(query, p))
    cursor = cursor.sort(mongo_sort(p))
    hits: list[tuple[Doc, float | None]] = []
    if query.near is None:
        hits = [(d, None) for d in await cursor.limit(query.limit + 1).to_list()]
    else:
        radius = query.radius_m or 0.0
        # about 1 in 5 documents of the box lies outside the circle
        cursor = cursor.batch_size(min(query.limit + query.limit // 3 + 2, 10_000))
        try:
            async for doc in cursor:
                dist = distance_of(doc, query.near)
                if within(dist, radius):
                    hits.append((doc, dist))
                    if len(hits) > query.limit:
                        break
        finally:
            await cursor.close()
    more = len(hits) > query.limit
    hits = hits[: query.limit]
    if more:
        last = sort_values(hits[-1][0], keys, hits[-1][1])
    items = [Hit(der_of(doc), dist) for doc, dist in hits]
    total = await _count(c, query, flt) if query.total else None
    return Page(items, _cursor(p, last), total)


async def _nearest(c: MongoConn, query: DiscoveryQuery, p: Plan, flt: Doc) -> list[GeoRow]:
    after_m = p.after[0] if p.after is not None else None

    async def read(window: int) -> list[Doc]:
        pipeline = geo.near_pipeline(query, flt, after_m, slim_projection(p), window)
        return await c.col("ders").aggregate(pipeline).to_list()

    return await nearest_rows(read, query, p)


async def nearest_rows(read: Callable[[int], Awaitable[list[Doc]]], query: DiscoveryQuery,
                       p: Plan) -> list[GeoRow]:
    """Read nearest-first windows (``read(n)``: the first n candidates in the server's
    distance order) until the page is settled (registry.mongo.geo.settled)."""
    assert query.near is not None
    window = query.limit + 1 + 16
    while True:
        docs = await read(window)
        rows = page_by_distance(docs, query, p)
        last = distance_of(docs[-1], query.near) if docs else None
        if geo.settled([r.distance or 0.0 for r in rows], query.limit + 1, last,
                       len(docs) < window):
            return rows
        window *= 4


async def _count(c: MongoConn, query: DiscoveryQuery, flt: Doc) -> int:
    if query.near is None:
        return await c.col("ders").count_documents(flt)
    docs = await c.col("ders").find(flt, {"location": 1}).to_list()
    radius = query.radius_m or 0.0
    return sum(1 for d in docs if within(distance_of(d, query.near), radius))


def _cursor(p: Plan, last: list[Any] | None) -> str | None:
    return encode_cursor(p.signature, last) if last is not None else None


async def der_briefs(c: MongoConn, query: DiscoveryQuery, scope: Scope) -> list[DerBrief]:
    """Pages of find_ders (the one Mongo compiler of discovery filters) as briefs."""
    out: list[DerBrief] = []
    q = query.model_copy(update={"limit": 1000, "cursor": None, "sort": ["device_id"],
                                 "fields": None, "total": False})
    while True:
        page = await find_ders(c, q, scope)
        out.extend(DerBrief.of(hit.der) for hit in page.items)
        if page.next_cursor is None:
            return out
        q = q.model_copy(update={"cursor": page.next_cursor})
