"""MongoDB side of the discovery API: find_ders, der_stats, patch_der, find_ven, find_log,
and the signature nonces (ReplayProtect).

Mixed into :class:`registry.mongo_store.MongoStore`; the filters come from
``registry.discovery_mongo`` (the twin of ``registry.discovery_sql``), and every read
applies the tenant scope inside the query, as the SQLite adapter does. Indexes are
declared in ``mongo_store.INDEXES``.

Three ways to answer ``find_ders`` (nx-27017 has no ``$geoNear``, see discovery_mongo):

* no ``near``: one ``find`` with filter, keyset condition, sort and ``limit + 1``;
* ``near`` sorted by other keys: the same ``find`` with the lat/lon box of the circle,
  streamed until ``limit + 1`` documents lie inside the exact radius;
* ``near`` sorted by ``distance_m``: every candidate in the box is read slim (id,
  location, sort keys), measured, ordered and cut in Python, then the page's documents
  are read by ``device_id``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from registry.discovery import (
    DerPatch,
    DerStats,
    DiscoveryQuery,
    Hit,
    LogQuery,
    Page,
    Plan,
    encode_cursor,
    patch_diff,
    plan,
)
from registry.discovery_mongo import (
    DISTANCE,
    and_,
    compile_filter,
    distance_of,
    epoch_us,
    keyset_filter,
    mongo_sort,
    page_by_distance,
    projection,
    slim_projection,
    sort_paths,
    sort_values,
    within,
)
from registry.models import Der, LogEntry, Ven
from registry.mongo_query import scope_filter
from registry.port import SERVICE, Conflict, Scope

T = TypeVar("T")
Doc = dict[str, Any]

_STATS_SEP = "\x1f"
NONCES = "signature_nonces"
_BACKFILL_BATCH = 1000


class MongoDiscovery:
    """Needs ``col``, ``_retry``, ``_do``, ``_unit``, ``_append_log``, ``_visible_horizon``
    and ``transactions`` of MongoStore."""

    col: Callable[[str], AsyncCollection[Doc]]
    _retry: Callable[..., Awaitable[Any]]
    _do: Callable[..., Awaitable[Any]]
    _unit: Callable[..., Awaitable[Any]]
    _append_log: Callable[..., Awaitable[list[LogEntry]]]
    _visible_horizon: Callable[[int, int], Awaitable[int]]
    transactions: bool

    if TYPE_CHECKING:  # document mapping of MongoStore
        @staticmethod
        def _der_of(doc: Doc) -> Der: ...
        @staticmethod
        def _ven_of(doc: Doc) -> Ven: ...
        @staticmethod
        def _log_of(doc: Doc) -> LogEntry: ...

    # --- find_ders -----------------------------------------------------------------

    async def find_ders(self, query: DiscoveryQuery, scope: Scope = SERVICE) -> Page:
        """One keyset page (see the module docstring). With ``fields``, the DERs carry only
        those fields (and what a Der requires); the others take their defaults."""
        p = plan(query)  # CursorError for a cursor of another query
        return await self._retry(lambda: self._find_ders(query, scope, p))  # type: ignore[no-any-return]

    async def _find_ders(self, query: DiscoveryQuery, scope: Scope, p: Plan) -> Page:
        flt = compile_filter(query, scope)
        keys = sort_paths(p)
        ders = self.col("ders")
        last: list[Any] | None = None
        if any(path == DISTANCE for path, _ in keys):
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
            items = [Hit(self._der_of(by_id[r.device_id]), r.distance)
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
        items = [Hit(self._der_of(doc), dist) for doc, dist in hits]
        total = await self._count(query, flt) if query.total else None
        return Page(items, _cursor(p, last), total)

    async def _count(self, query: DiscoveryQuery, flt: Doc) -> int:
        if query.near is None:
            return await self.col("ders").count_documents(flt)  # type: ignore[no-any-return]
        docs = await self.col("ders").find(flt, {"location": 1}).to_list()
        radius = query.radius_m or 0.0
        return sum(1 for d in docs if within(distance_of(d, query.near), radius))

    # --- der_stats -----------------------------------------------------------------

    async def der_stats(self, scope: Scope = SERVICE) -> DerStats:
        # one group over the joined key: nx-27017 does not evaluate a compound group key
        # ({"_id": {"c": "$device_class", ...}}) but does evaluate $concat
        key = {"$concat": ["$device_class", _STATS_SEP, "$device_type", _STATS_SEP,
                           "$liveness"]}
        pipeline: list[Doc] = [{"$match": scope_filter(scope)},
                               {"$group": {"_id": key, "n": {"$sum": 1}}}]

        async def run() -> list[Doc]:
            return await (await self.col("ders").aggregate(pipeline)).to_list()  # type: ignore[no-any-return]

        stats = DerStats(total=0)
        for row in await self._retry(run):
            device_class, device_type, liveness = row["_id"].split(_STATS_SEP)
            n = int(row["n"])
            stats.total += n
            for bucket, k in ((stats.by_class, device_class), (stats.by_type, device_type),
                              (stats.by_liveness, liveness)):
                bucket[k] = bucket.get(k, 0) + n
        return stats

    # --- patch_der ------------------------------------------------------------------

    async def patch_der(
        self, device_id: str, patch: DerPatch, scope: Scope = SERVICE, *, actor: str,
        if_version: int | None = None,
    ) -> Der | None:
        """Read in the scope, check the version, then an update conditional on the version
        read (a concurrent writer makes it match nothing: Conflict); logged as der.changed.
        One transaction where the server has them; otherwise the log entry follows the
        update (as every batch on a standalone server)."""
        changes = patch.changes()
        return await self._unit(  # type: ignore[no-any-return]
            lambda s: self._patch_der(device_id, changes, scope, actor, if_version, s))

    async def _patch_der(self, device_id: str, changes: dict[str, Any], scope: Scope,
                         actor: str, if_version: int | None, s: Any) -> Der | None:
        ders = self.col("ders")
        flt = and_([scope_filter(scope), {"device_id": device_id}])
        doc = await self._do(s, lambda: ders.find_one(flt, session=s))
        if doc is None:
            return None
        der = self._der_of(doc)
        if if_version is not None and der.version != if_version:
            raise Conflict(f"version is {der.version}, not {if_version}")
        diff = patch_diff(der, changes)
        if not diff:
            return der
        now = datetime.now(UTC)
        new = der.model_copy(update=changes)
        loc = new.location
        fields: Doc = {
            "availability": new.availability,
            "dr_availability": new.dr_availability,
            "marketplace_availability": new.marketplace_availability,
            "device_name": new.device_name,
            "location": loc.model_dump(mode="json") if loc else None,
            "updated_at": now.isoformat(),
            "updated_us": epoch_us(now),
        }
        update: Doc = {"$set": fields, "$inc": {"version": 1}}
        if loc is not None:
            fields["geo"] = {"type": "Point", "coordinates": [loc.lon, loc.lat]}
        else:
            update["$unset"] = {"geo": ""}
        res = await self._do(s, lambda: ders.update_one(
            {"device_id": device_id, "version": der.version}, update, session=s))
        if res.modified_count != 1:  # another writer won between the read and the update
            raise Conflict("DER changed concurrently")
        await self._append_log([
            LogEntry(
                kind="der.changed", at=now, actor=actor, ven_id=der.ven_id,
                device_id=device_id, aggregator_id=der.aggregator_id,
                account_id=der.account_id,
                data={"changes": diff, "version": der.version + 1},
            )
        ], s)
        doc = await self._do(s, lambda: ders.find_one({"device_id": device_id}, session=s))
        return self._der_of(doc) if doc else None

    # --- VENs and the log, in a scope ---------------------------------------------------

    async def find_ven(self, ven_id: str, scope: Scope = SERVICE) -> Ven | None:
        flt = and_([scope_filter(scope), {"_id": ven_id}])
        doc = await self._retry(lambda: self.col("vens").find_one(flt))
        return self._ven_of(doc) if doc else None

    async def find_log(self, query: LogQuery, scope: Scope = SERVICE) -> list[LogEntry]:
        parts: list[Doc] = [{"seq": {"$gt": query.after}}, scope_filter(scope)]
        if query.kind:
            parts.append({"kind": {"$in": list(query.kind)}})
        for name in ("ven_id", "device_id"):
            value = getattr(query, name)
            if value is not None:
                parts.append({name: value})
        flt = and_(parts)
        docs = await self._retry(
            lambda: self.col("log").find(flt).sort("seq", 1).limit(query.limit).to_list()
        )
        if docs and not self.transactions:
            # as read_log: never past a hole a writer may still fill (tails miss nothing)
            horizon = await self._visible_horizon(query.after, docs[-1]["seq"])
            docs = [d for d in docs if d["seq"] <= horizon]
        return [self._log_of(d) for d in docs]

    # --- signature nonces (ReplayProtect) ---------------------------------------------

    async def remember_nonce(self, ven_id: str, nonce: str, expires: datetime) -> bool:
        """Insert-or-refuse on the unique (ven_id, nonce) index.

        A nonce that is there but expired (the TTL monitor deletes within a minute or so)
        is taken over by deleting it conditionally on its expiry and inserting again: of
        several processes doing so at once, one insert wins and the others see the key.
        """
        coll = self.col(NONCES)
        doc = {"ven_id": ven_id, "nonce": nonce, "expires_at": expires}

        async def insert() -> bool:
            try:
                await self._retry(lambda: coll.insert_one(dict(doc)))
                return True
            except (DuplicateKeyError, Conflict):
                return False

        for _ in range(3):
            if await insert():
                return True
            now = datetime.now(UTC)
            res = await self._retry(lambda n=now: coll.delete_one(
                {"ven_id": ven_id, "nonce": nonce, "expires_at": {"$lt": n}}))
            if res.deleted_count != 1:
                # not expired: seen before (unless it vanished meanwhile; one more try)
                return await insert()
        return False

    # --- migration ------------------------------------------------------------------

    async def _backfill_updated_us(self) -> int:
        """Give DER documents written before ``updated_us`` existed their numeric
        ``updated_at`` (filters and sorts use it). Idempotent; a no-op when none lack it."""
        ders = self.col("ders")
        fixed = 0
        while True:
            docs = await self._retry(lambda: ders.find(
                {"updated_us": {"$in": [None]}}, {"updated_at": 1}).limit(_BACKFILL_BATCH)
                .to_list())
            if not docs:
                return fixed
            ops = [UpdateOne({"_id": d["_id"]}, {"$set": {"updated_us": _epoch_us(d)}})
                   for d in docs]
            await self._retry(lambda o=ops: ders.bulk_write(o, ordered=False))
            fixed += len(ops)


def _cursor(p: Plan, last: list[Any] | None) -> str | None:
    return encode_cursor(p.signature, last) if last is not None else None


def _epoch_us(doc: Doc) -> int:
    value = doc.get("updated_at")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return epoch_us(value if isinstance(value, datetime) else datetime.now(UTC))
