"""MongoDB adapter of the store port (``pymongo.AsyncMongoClient``).

Documents are the pydantic JSON form of the models (datetimes as ISO-8601 strings, so a
round trip is exact: BSON dates keep milliseconds only), plus the few numeric fields the
queries compare: ``last_seen``/``offline_since`` of VENs are epoch floats, and DERs carry
``reported_online`` (1/0/null, as in SQLite) and a GeoJSON ``geo`` point.

Atomicity
    On a replica set or mongos, ``commit``, ``mark_online`` and ``sweep_liveness`` run in
    one multi-document transaction. On a standalone server (nx-27017, a lone mongod) there
    are no transactions: the batch is applied as ordered, idempotent writes (upserts keyed
    on natural keys; outbox and log inserts keyed on pre-reserved sequence numbers, so a
    retried insert is a duplicate that is ignored), data first and the log last. A crash
    in the middle leaves the earlier writes applied; the VEN retries its message and the
    writes are re-applied harmlessly.
    Every cross-process race is settled by one conditional single-document write:
    ``claim_next`` is ``find_one_and_delete`` (sorted by seq), a liveness transition is an
    update whose filter names the old state, and sequence numbers come from ``$inc`` on a
    counter document.

Event-log sequence numbers
    Unique and strictly increasing (the counter hands out each number once). Gap-free in
    transaction mode (an aborted transaction rolls the counter back, and a concurrent
    committer waits on the counter document, so commit order is seq order). Without
    transactions a number is lost only if a writer dies between reserving it and inserting
    the entry (or a reservation is retried after a timeout). Readers never skip an entry
    still being written: ``read_log`` stops before a hole unless the entry after it was
    written more than ``hole_grace_s`` ago, when the hole is taken to be permanent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from bson import ObjectId
from pydantic import BaseModel
from pymongo import AsyncMongoClient, InsertOne, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

from registry.discovery_mongo import epoch_us
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
    Ven,
)
from registry.mongo_discovery import NONCES, MongoDiscovery
from registry.mongo_query import DER_SORT, der_filter, der_limit, scope_filter
from registry.mongo_views import VIEW_INDEXES, VIEW_KIND_READ, MongoViews, view_import_ops
from registry.port import (
    SERVICE,
    Batch,
    Conflict,
    DerQuery,
    DerRef,
    DerStatusUpdate,
    PollState,
    Scope,
    StoreError,
    StoreUnavailable,
    liveness_entry,
)
from vtn.config import StoreConfig

T = TypeVar("T")
Doc = dict[str, Any]
Session = AsyncClientSession | None

TRANSIENT = (
    AutoReconnect,
    NetworkTimeout,
    ServerSelectionTimeoutError,
    ConnectionFailure,
    WTimeoutError,
)

# collection -> [(name, keys, options)]; created idempotently by open()/init_indexes()
INDEXES: dict[str, list[tuple[str, list[tuple[str, Any]], dict[str, Any]]]] = {
    "vens": [
        ("ven_id_unique", [("ven_id", 1)], {"unique": True}),
        ("ven_name_unique", [("ven_name", 1)], {"unique": True}),
        ("fingerprint", [("fingerprint", 1)], {}),
        ("registration_id", [("registration_id", 1)], {}),
        ("aggregator_id", [("aggregator_id", 1)], {}),
        ("account_id", [("account_id", 1)], {}),
        ("liveness", [("liveness", 1), ("last_seen", 1)], {}),
        ("role", [("role", 1)], {}),
    ],
    "ders": [
        ("ven_resource_unique", [("ven_id", 1), ("resource_id", 1)], {"unique": True}),
        ("device_id_unique", [("device_id", 1)], {"unique": True}),
        ("aggregator_id", [("aggregator_id", 1), ("device_class", 1)], {}),
        ("account_id", [("account_id", 1)], {}),
        ("class_capacity", [("device_class", 1), ("max_capacity", 1)], {}),
        ("liveness", [("liveness", 1)], {}),
        ("location", [("location.lat", 1), ("location.lon", 1)], {}),
        # nx-27017 accepts this but builds a plain index (and has no $geoWithin/$near):
        # geo queries there must use the lat/lon range index above; check() reports it
        ("geo_2dsphere", [("geo", "2dsphere")], {}),
        # discovery (registry.discovery_mongo): filters and sorts of the side API; an
        # ordered walk of a (filter, sort key) index stops after one page, as in SQLite
        ("updated_us", [("updated_us", 1)], {}),
        ("class_updated", [("device_class", 1), ("updated_us", 1)], {}),
        ("class_available", [("device_class", 1), ("available_capacity", 1)], {}),
        ("aggregator_capacity", [("aggregator_id", 1), ("max_capacity", 1)], {}),
        ("aggregator_name", [("aggregator_id", 1), ("device_name", 1)], {}),
        # der_stats groups on these three
        ("stats", [("device_class", 1), ("device_type", 1), ("liveness", 1)], {}),
    ],
    "report_specs": [
        ("ven_spec_unique", [("ven_id", 1), ("report_specifier_id", 1)], {"unique": True}),
    ],
    "report_requests": [
        ("ven_request_unique", [("ven_id", 1), ("report_request_id", 1)], {"unique": True}),
        ("ven_order", [("ven_id", 1), ("ord", 1)], {}),
    ],
    "outbox": [("ven_seq", [("ven_id", 1), ("seq", 1)], {"unique": True})],
    "log": [
        ("seq_unique", [("seq", 1)], {"unique": True}),
        ("ven_seq", [("ven_id", 1), ("seq", 1)], {}),
        # find_log: scoped and filtered tails of the side API's event stream
        ("aggregator_seq", [("aggregator_id", 1), ("seq", 1)], {}),
        ("account_seq", [("account_id", 1), ("seq", 1)], {}),
        ("device_seq", [("device_id", 1), ("seq", 1)], {}),
        ("kind_seq", [("kind", 1), ("seq", 1)], {}),
    ],
    # remember_nonce: one document per (ven_id, nonce); the TTL monitor deletes it once
    # expires_at (a BSON date) has passed
    NONCES: [
        ("ven_nonce_unique", [("ven_id", 1), ("nonce", 1)], {"unique": True}),
        ("expires_ttl", [("expires_at", 1)], {"expireAfterSeconds": 0}),
    ],
}

INDEXES.update(VIEW_INDEXES)

KINDS = ("ven", "der", "report_spec", "report_request", "view", "report_subscription",
         "outbox", "log")
BULK_OPS = 500  # operations per bulk_write round trip (see MongoStore._bulk)


def _ts(dt: datetime | None) -> float | None:
    return dt.timestamp() if dt is not None else None


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _json(model: BaseModel) -> Doc:
    return model.model_dump(mode="json")


def _iso(dt: datetime) -> str:
    return dt.isoformat()  # pydantic parses it back exactly


# rIDs are free text: escape the characters a field path cannot hold
def _key(k: str) -> str:
    return k.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def _unkey(k: str) -> str:
    return k.replace("%24", "$").replace("%2E", ".").replace("%25", "%")


def _online_flag(status: DerStatus | None) -> int | None:
    # an int, not a bool: nx-27017 stores a $set boolean as 1/0, so use 1/0 everywhere
    if status is None or status.online is None:
        return None
    return int(status.online)


def _db_name(url: str) -> str:
    path = urlsplit(url).path.lstrip("/")
    return path or "vtn"


class MongoStore(MongoViews, MongoDiscovery):
    """Store port over one MongoDB database."""

    def __init__(self, url: str, cfg: StoreConfig | None = None) -> None:
        self.url = url
        self.cfg = cfg or StoreConfig()
        self.db_name = _db_name(url)
        # a writer that has not inserted its reserved seq after this long never will
        attempts = self.cfg.mongo_retries + 1
        self.hole_grace_s = max(5.0, self.cfg.mongo_timeout_ms / 1000 * attempts * 2)
        self._client: AsyncMongoClient[Doc] | None = None
        self._db: AsyncDatabase[Doc] | None = None
        self.transactions = False

    # document mapping, for the mixins (registry.mongo_discovery)
    @staticmethod
    def _der_of(doc: Doc) -> Der:
        return _der(doc)

    @staticmethod
    def _ven_of(doc: Doc) -> Ven:
        return _ven(doc)

    @staticmethod
    def _log_of(doc: Doc) -> LogEntry:
        return LogEntry.model_validate(_strip(doc))

    # --- lifecycle ------------------------------------------------------------

    def _make_client(self) -> AsyncMongoClient[Doc]:
        t = self.cfg.mongo_timeout_ms
        w: int | str = self.cfg.mongo_write_concern
        if isinstance(w, str) and w.isdigit():
            w = int(w)
        return AsyncMongoClient(
            self.url,
            serverSelectionTimeoutMS=t,
            connectTimeoutMS=t,
            socketTimeoutMS=max(4 * t, 30_000),
            w=w,
            wTimeoutMS=t,
            readPreference=self.cfg.mongo_read_preference,
            tz_aware=True,
            appname="oadr-vtn",
        )

    async def open(self) -> None:
        self._client = self._make_client()
        self._db = self._client.get_database(self.db_name)
        hello = await self._retry(lambda: self.db.command("hello"))
        # transactions need a replica set or mongos; nx-27017 and a lone mongod have neither
        self.transactions = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
        await self.init_indexes()
        await self._backfill_updated_us()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._db = None

    @property
    def db(self) -> AsyncDatabase[Doc]:
        if self._db is None:
            raise StoreUnavailable("store is not open")
        return self._db

    def col(self, name: str) -> AsyncCollection[Doc]:
        return self.db[name]

    async def init_indexes(self) -> None:
        """Create every index of INDEXES (a no-op for the ones that exist)."""
        for coll, specs in INDEXES.items():
            for name, keys, opts in specs:
                await self._retry(
                    lambda c=coll, n=name, k=keys, o=opts: self.col(c).create_index(
                        k, name=n, **o
                    )
                )

    async def check(self) -> dict[str, Any]:
        """Reachability, server version and which declared indexes are missing."""
        out: dict[str, Any] = {"reachable": False, "database": self.db_name}
        try:
            info = await self._retry(lambda: self.db.command("buildInfo"))
            out.update(reachable=True, server_version=info.get("version"))
            out["server"] = info.get("process", "mongod")
            out["transactions"] = self.transactions
            out.update(await self._index_report())
        except StoreUnavailable as exc:
            out["error"] = str(exc)
        return out

    async def _index_report(self) -> dict[str, list[str]]:
        missing: list[str] = []
        degraded: list[str] = []
        for coll, specs in INDEXES.items():
            cursor = await self.col(coll).list_indexes()
            have = [list(ix["key"].items()) async for ix in cursor]
            for name, keys, _ in specs:
                wanted = [(k, v) for k, v in keys]
                if wanted in have:
                    continue
                # nx-27017 renames indexes and builds 2dsphere as a plain index: match by key
                if [(k, 1) for k, _v in keys] in have:
                    degraded.append(f"{coll}.{name} (built as a plain index)")
                else:
                    missing.append(f"{coll}.{name}")
        return {"missing_indexes": missing, "degraded_indexes": degraded}

    # --- retries and transactions -------------------------------------------------

    async def _retry(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run op, retrying transient failures with bounded exponential backoff."""
        attempts = max(self.cfg.mongo_retries, 0) + 1
        for attempt in range(attempts):
            try:
                return await op()
            except TRANSIENT as exc:
                if attempt == attempts - 1:
                    raise StoreUnavailable(f"mongodb unavailable: {exc}") from exc
            except BulkWriteError:
                raise  # per-operation errors: the caller decides (see _bulk)
            except OperationFailure as exc:
                if not exc.has_error_label("RetryableWriteError") or attempt == attempts - 1:
                    raise _store_error(exc) from exc
            await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
        raise StoreUnavailable("unreachable")  # pragma: no cover

    async def _do(self, s: Session, op: Callable[[], Awaitable[T]]) -> T:
        # inside a transaction the whole transaction is retried, not one statement
        return await op() if s is not None else await self._retry(op)

    async def _unit(self, work: Callable[[Session], Awaitable[T]]) -> T:
        """Run work in a transaction when the server has them, else directly."""
        if not self.transactions:
            return await work(None)
        client = self._client
        assert client is not None

        async def in_txn() -> T:
            async with client.start_session() as s:
                return await s.with_transaction(work)

        return await self._retry(in_txn)

    # --- VENs -----------------------------------------------------------------

    async def get_ven(self, ven_id: str) -> Ven | None:
        return await self._find_ven({"_id": ven_id})

    async def poll_state(self, ven_id: str) -> PollState | None:
        doc = await self._retry(lambda: self.col("vens").find_one(
            {"_id": ven_id}, {"registered": 1, "fingerprint": 1, "liveness": 1}))
        if doc is None:
            return None
        # the outbox is asked by claim_next itself: one round trip here, not two
        return PollState(ven_id, bool(doc.get("registered")), doc.get("fingerprint"),
                         Liveness(doc["liveness"]), True)

    async def find_ven_by_name(self, ven_name: str) -> Ven | None:
        return await self._find_ven({"ven_name": ven_name})

    async def find_ven_by_fingerprint(self, fingerprint: str) -> Ven | None:
        return await self._find_ven({"fingerprint": fingerprint})

    async def _find_ven(self, flt: Doc) -> Ven | None:
        doc = await self._retry(lambda: self.col("vens").find_one(flt))
        return _ven(doc) if doc else None

    async def list_vens(self, scope: Scope) -> list[Ven]:
        return await self._vens_where(scope_filter(scope))

    async def _vens_where(self, flt: Doc) -> list[Ven]:
        docs = await self._retry(
            lambda: self.col("vens").find(flt).sort("ven_name", 1).to_list()
        )
        return [_ven(d) for d in docs]

    # --- DERs -----------------------------------------------------------------

    async def get_der(self, device_id: str, scope: Scope) -> Der | None:
        scoped = scope_filter(scope)
        flt = {"$and": [scoped, {"device_id": device_id}]} if scoped else {"device_id": device_id}
        doc = await self._retry(lambda: self.col("ders").find_one(flt))
        return _der(doc) if doc else None

    async def ders_of_ven(self, ven_id: str) -> list[Der]:
        docs = await self._retry(
            lambda: self.col("ders").find({"ven_id": ven_id}).sort("resource_id", 1).to_list()
        )
        return [_der(d) for d in docs]

    async def der_refs_of_ven(self, ven_id: str) -> list[DerRef]:
        fields = {"device_id": 1, "resource_id": 1, "aggregator_id": 1, "account_id": 1,
                  "status": 1}
        docs = await self._retry(
            lambda: self.col("ders")
            .find({"ven_id": ven_id}, fields)
            .sort("resource_id", 1)
            .to_list()
        )
        return [
            DerRef(
                d["device_id"],
                d["resource_id"],
                d.get("aggregator_id"),
                d.get("account_id"),
                DerStatus.model_validate(d.get("status") or {}),
            )
            for d in docs
        ]

    async def list_ders(self, query: DerQuery, scope: Scope = SERVICE) -> list[Der]:
        limit = der_limit(query)
        if limit is None:
            return []
        flt = der_filter(query, scope)
        docs = await self._retry(
            lambda: self.col("ders").find(flt).sort(DER_SORT).limit(limit).to_list()
        )
        return [_der(d) for d in docs]

    async def count_ders(self, scope: Scope = SERVICE) -> int:
        flt = scope_filter(scope)
        return await self._retry(lambda: self.col("ders").count_documents(flt))

    # --- reports --------------------------------------------------------------

    async def report_specs_of_ven(self, ven_id: str) -> list[ReportSpec]:
        docs = await self._retry(
            lambda: self.col("report_specs")
            .find({"ven_id": ven_id})
            .sort("report_specifier_id", 1)
            .to_list()
        )
        return [ReportSpec.model_validate(_strip(d)) for d in docs]

    async def get_report_request(
        self, ven_id: str, report_request_id: str
    ) -> ReportRequestRecord | None:
        flt = {"ven_id": ven_id, "report_request_id": report_request_id}
        doc = await self._retry(lambda: self.col("report_requests").find_one(flt))
        return ReportRequestRecord.model_validate(_strip(doc)) if doc else None

    async def report_requests_of_ven(self, ven_id: str) -> list[ReportRequestRecord]:
        docs = await self._retry(
            lambda: self.col("report_requests").find({"ven_id": ven_id}).sort("ord", 1).to_list()
        )
        return [ReportRequestRecord.model_validate(_strip(d)) for d in docs]

    # --- writes ---------------------------------------------------------------

    async def commit(self, batch: Batch) -> list[LogEntry]:
        if not batch:
            return []
        return await self._unit(lambda s: self._apply(batch, s))

    async def _apply(self, batch: Batch, s: Session) -> list[LogEntry]:
        """Same order as the SQLite adapter; the log goes last (see module docstring)."""
        await self._write_views_batch(batch, s)  # first: a stale announcement aborts all
        if batch.vens:
            await self._bulk(s, "vens", [_ven_upsert(v) for v in batch.vens])
        for ven_id in batch.replace_report_specs_of:
            await self._do(s, lambda v=ven_id: self.col("report_specs").delete_many(
                {"ven_id": v}, session=s))
        if batch.report_specs:
            await self._bulk(s, "report_specs", [_spec_op(r) for r in batch.report_specs])
        if batch.ders:
            await self._bulk(s, "ders", [op for d in batch.ders for op in _der_upsert(d)])
        if batch.delete_ders:
            ids = list(batch.delete_ders)
            await self._do(s, lambda: self.col("ders").delete_many(
                {"device_id": {"$in": ids}}, session=s))
        if batch.der_status:
            await self._write_status(batch.der_status, s)
        await self._write_report_requests(batch, s)
        for ven_id in batch.clear_outbox_of:
            await self._do(s, lambda v=ven_id: self.col("outbox").delete_many(
                {"ven_id": v}, session=s))
        if batch.outbox:
            await self._append_outbox(batch.outbox, s)
        entries = await self._append_log(batch.log, s)
        for ven_id, at in batch.mark_online:
            await self._mark_online(ven_id, at, s)
        return entries

    async def _write_report_requests(self, batch: Batch, s: Session) -> None:
        cancelled = ReportRequestState.CANCELLED.value
        for ven_id in batch.cancel_report_requests_of:
            await self._do(s, lambda v=ven_id: self.col("report_requests").update_many(
                {"ven_id": v, "state": {"$ne": cancelled}},
                {"$set": {"state": cancelled}}, session=s))
        if batch.report_requests:
            await self._bulk(s, "report_requests", [_request_op(r) for r in batch.report_requests])
        if batch.report_request_states:
            ops = [
                UpdateOne({"ven_id": v, "report_request_id": r}, {"$set": {"state": st.value}})
                for v, r, st in batch.report_request_states
            ]
            await self._bulk(s, "report_requests", ops)

    async def _bulk(self, s: Session, coll: str, ops: list[Any]) -> None:
        """Ordered bulk write; a lost upsert race (duplicate key) resumes at that op.

        Two writers upserting the same natural key at once: one insert wins, the other
        gets E11000 and is re-run as the update it should have been.

        Sent in round trips of at most BULK_OPS operations: one huge round trip (a
        3000-DER METADATA batch is 6000 ops, ~20 s on nx-27017) can outlast the socket
        timeout, and its retry then queues behind the first attempt.
        """
        start, failed_at = 0, -1
        while start < len(ops):
            chunk = ops[start : start + BULK_OPS]
            try:
                await self._do(s, lambda c=chunk: self.col(coll).bulk_write(
                    c, ordered=True, session=s))
                start += len(chunk)
            except BulkWriteError as exc:
                if s is not None:
                    raise  # keep the TransientTransactionError label for with_transaction
                errors = exc.details.get("writeErrors", [])
                if not errors or errors[0].get("code") != 11000:
                    raise _store_error(exc) from exc
                index = start + errors[0]["index"]
                if isinstance(ops[index], InsertOne):
                    start = index + 1  # already there (a retried insert, a re-import)
                elif index == failed_at:
                    raise _store_error(exc) from exc  # a real conflict, not a race
                else:
                    start = failed_at = index

    async def _write_status(self, updates: list[DerStatusUpdate], s: Session) -> None:
        ven_liveness = await self._liveness_for(updates, s)
        ops = [_status_op(u, ven_liveness) for u in updates]
        await self._bulk(s, "ders", ops)

    async def _liveness_for(self, updates: list[DerStatusUpdate], s: Session) -> dict[str, str]:
        """device_id -> its VEN's liveness, for DERs that report themselves online."""
        ids = [u.device_id for u in updates if _online_flag(u.status) == 1]
        if not ids:
            return {}
        ders = await self._do(s, lambda: self.col("ders").find(
            {"device_id": {"$in": ids}}, {"device_id": 1, "ven_id": 1}, session=s).to_list())
        ven_ids = list({d["ven_id"] for d in ders})
        vens = await self._do(s, lambda: self.col("vens").find(
            {"_id": {"$in": ven_ids}}, {"liveness": 1}, session=s).to_list())
        by_ven = {v["_id"]: v["liveness"] for v in vens}
        return {d["device_id"]: by_ven[d["ven_id"]] for d in ders if d["ven_id"] in by_ven}

    async def _reserve(self, name: str, n: int, s: Session) -> int:
        """Reserve n sequence numbers; returns the first."""
        doc = await self._do(s, lambda: self.col("counters").find_one_and_update(
            {"_id": name}, {"$inc": {"seq": n}}, upsert=True,
            return_document=ReturnDocument.AFTER, session=s))
        return int(doc["seq"]) - n + 1

    async def _append_outbox(self, messages: list[OutboxMessage], s: Session) -> None:
        first = await self._reserve("outbox", len(messages), s)
        docs = [_outbox_doc(m, first + i) for i, m in enumerate(messages)]
        await self._bulk(s, "outbox", [InsertOne(d) for d in docs])

    async def _append_log(self, entries: list[LogEntry], s: Session) -> list[LogEntry]:
        if not entries:
            return []
        first = await self._reserve("log", len(entries), s)
        out = [e.model_copy(update={"seq": first + i}) for i, e in enumerate(entries)]
        await self._bulk(s, "log", [InsertOne(_log_doc(e)) for e in out])
        return out

    # --- outbox ---------------------------------------------------------------

    async def claim_next(self, ven_id: str) -> OutboxMessage | None:
        # the delete is the claim: the server hands each document to one caller only
        doc = await self._retry(lambda: self.col("outbox").find_one_and_delete(
            {"ven_id": ven_id}, sort=[("seq", 1)]))
        return OutboxMessage.model_validate(_strip(doc)) if doc else None

    async def pending_count(self, ven_id: str) -> int:
        return await self._retry(lambda: self.col("outbox").count_documents({"ven_id": ven_id}))

    # --- event log --------------------------------------------------------------

    async def read_log(
        self, after: int = 0, limit: int = 100, ven_id: str | None = None
    ) -> list[LogEntry]:
        if limit == 0:
            return []
        flt: Doc = {"seq": {"$gt": after}}
        if ven_id is not None:
            flt["ven_id"] = ven_id
        docs = await self._retry(
            lambda: self.col("log").find(flt).sort("seq", 1).limit(max(limit, 0)).to_list()
        )
        if docs and not self.transactions:
            horizon = await self._visible_horizon(after, docs[-1]["seq"])
            docs = [d for d in docs if d["seq"] <= horizon]
        return [LogEntry.model_validate(_strip(d)) for d in docs]

    async def _visible_horizon(self, after: int, upto: int) -> int:
        """Highest seq <= upto with no hole (of a writer still at work) before it."""
        rng = {"seq": {"$gt": after, "$lte": upto}}
        count = await self._retry(lambda: self.col("log").count_documents(rng))
        if count == upto - after:
            return upto
        rows = await self._retry(
            lambda: self.col("log").find(rng, {"seq": 1, "written": 1}).sort("seq", 1).to_list()
        )
        expected, now = after + 1, time.time()
        for row in rows:
            if row["seq"] != expected and now - row.get("written", 0) < self.hole_grace_s:
                return expected - 1
            expected = row["seq"] + 1
        return upto

    async def last_seq(self) -> int:
        doc = await self._retry(lambda: self.col("log").find_one({}, sort=[("seq", -1)]))
        return int(doc["seq"]) if doc else 0

    # --- liveness ---------------------------------------------------------------

    async def touch(self, contacts: dict[str, datetime]) -> None:
        if not contacts:
            return
        ops = [UpdateOne({"_id": v}, {"$max": {"last_seen": t.timestamp()}})
               for v, t in contacts.items()]
        await self._bulk(None, "vens", ops)

    async def mark_online(self, ven_id: str, now: datetime) -> LivenessChange | None:
        return await self._unit(lambda s: self._mark_online(ven_id, now, s))

    async def _mark_online(self, ven_id: str, now: datetime, s: Session) -> LivenessChange | None:
        t = now.timestamp()
        # conditional: of two processes, only one sees the old state and logs the change
        before = await self._do(s, lambda: self.col("vens").find_one_and_update(
            {"_id": ven_id, "liveness": {"$ne": Liveness.ONLINE.value}},
            {"$set": {"liveness": Liveness.ONLINE.value, "last_seen": t, "offline_since": None}},
            projection={"liveness": 1, "aggregator_id": 1, "account_id": 1},
            return_document=ReturnDocument.BEFORE, session=s))
        if before is None:
            await self._do(s, lambda: self.col("vens").update_one(
                {"_id": ven_id}, {"$max": {"last_seen": t}}, session=s))
            return None
        ders = await self._set_der_liveness(ven_id, Liveness.ONLINE, s)
        change = LivenessChange(
            ven_id=ven_id, old=Liveness(before["liveness"]), new=Liveness.ONLINE, ders=ders
        )
        entry = liveness_entry(change, now, before.get("aggregator_id"), before.get("account_id"))
        await self._append_log([entry], s)
        return change

    async def _set_der_liveness(self, ven_id: str, new: Liveness, s: Session) -> int:
        """DERs follow their VEN, except those that reported themselves offline."""
        await self._do(s, lambda: self.col("ders").update_many(
            {"ven_id": ven_id, "reported_online": 0},
            {"$set": {"liveness": Liveness.OFFLINE.value}}, session=s))
        await self._do(s, lambda: self.col("ders").update_many(
            # not {"$ne": 0}: nx-27017's update path drops null there (SQL NULL != 0)
            {"ven_id": ven_id, "reported_online": {"$in": [None, 1]}},
            {"$set": {"liveness": new.value}}, session=s))
        # counted, not taken from matched_count: nx-27017 reports only modified documents
        return await self._do(s, lambda: self.col("ders").count_documents(
            {"ven_id": ven_id}, session=s))

    async def sweep_liveness(
        self, now: datetime, stale_after_polls: float, offline_after_polls: float
    ) -> list[LivenessChange]:
        t = now.timestamp()
        flt = {
            "liveness": {"$ne": Liveness.OFFLINE.value},
            "$expr": {"$lt": [
                {"$ifNull": ["$last_seen", 0]},
                {"$subtract": [t, {"$multiply": ["$poll_freq_s", stale_after_polls]}]},
            ]},
        }
        fields = {"liveness": 1, "last_seen": 1, "poll_freq_s": 1, "aggregator_id": 1,
                  "account_id": 1}
        rows = await self._retry(lambda: self.col("vens").find(flt, fields).to_list())
        changes = []
        for row in rows:
            last = row.get("last_seen") or 0
            is_offline = last < t - row["poll_freq_s"] * offline_after_polls
            new = Liveness.OFFLINE if is_offline else Liveness.STALE
            if new.value == row["liveness"]:
                continue
            change = await self._unit(lambda s, r=row, n=new: self._transition(r, n, now, s))
            if change is not None:
                changes.append(change)
        return changes

    async def _transition(
        self, row: Doc, new: Liveness, now: datetime, s: Session
    ) -> LivenessChange | None:
        """Apply one sweep transition if nobody changed the VEN since we read it."""
        t = now.timestamp()
        res = await self._do(s, lambda: self.col("vens").update_one(
            {"_id": row["_id"], "liveness": row["liveness"], "last_seen": row.get("last_seen")},
            {"$set": {"liveness": new.value,
                      "offline_since": t if new == Liveness.OFFLINE else None}},
            session=s))
        if res.modified_count != 1:
            return None  # another sweeper, a mark_online or a touch got there first
        ders = await self._set_der_liveness(row["_id"], new, s)
        change = LivenessChange(ven_id=row["_id"], old=Liveness(row["liveness"]), new=new,
                                ders=ders)
        entry = liveness_entry(change, now, row.get("aggregator_id"), row.get("account_id"))
        await self._append_log([entry], s)
        return change

    # --- bulk (export / import) -------------------------------------------------

    async def iter_all(self, kind: str) -> AsyncIterator[BaseModel]:
        """Stream every record of one kind (see registry.transfer), in a stable order."""
        coll, sort, parse = _KIND_READ[kind]
        cursor = self.col(coll).find({}).sort(sort).batch_size(1000)
        try:
            async for doc in cursor:
                yield parse(doc)
        except TRANSIENT as exc:
            raise StoreUnavailable(f"mongodb unavailable: {exc}") from exc
        finally:
            await cursor.close()

    async def import_records(self, kind: str, records: list[BaseModel]) -> int:
        """Exact, idempotent restore of dumped records (keeps device_ids and seqs).

        Used by registry.transfer when the target is MongoDB: replaces by natural key, and
        outbox/log entries are inserted under their own seq (already there: skipped).
        """
        if not records:
            return 0
        coll, ops = _import_ops(kind, records)
        await self._bulk(None, coll, ops)
        if kind in ("outbox", "log"):
            top = max(int(getattr(r, "seq", 0) or 0) for r in records)
            await self._retry(lambda: self.col("counters").update_one(
                {"_id": kind}, {"$max": {"seq": top}}, upsert=True))
        return len(records)


# --- document mapping ----------------------------------------------------------


def _strip(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k not in ("_id", "ord", "written")}


def _ven_doc(v: Ven) -> Doc:
    doc = _json(v)
    doc["_id"] = v.ven_id
    doc["last_seen"] = _ts(v.last_seen)
    doc["offline_since"] = _ts(v.offline_since)
    return doc


_VEN_LIVENESS = ("liveness", "last_seen", "offline_since")


def _ven_upsert(v: Ven) -> UpdateOne:
    # liveness fields are owned by mark_online / sweep: only set on insert
    doc = _ven_doc(v)
    on_insert = {k: doc.pop(k) for k in _VEN_LIVENESS}
    del doc["_id"]
    return UpdateOne({"_id": v.ven_id}, {"$set": doc, "$setOnInsert": on_insert}, upsert=True)


def _ven(doc: Doc) -> Ven:
    doc = _strip(doc)
    doc["last_seen"] = _dt(doc.get("last_seen"))
    doc["offline_since"] = _dt(doc.get("offline_since"))
    return Ven.model_validate(doc)


def _der_doc(d: Der) -> Doc:
    doc = _json(d)
    doc["_id"] = d.device_id
    doc["reported_online"] = _online_flag(d.status)
    doc["updated_us"] = epoch_us(d.updated_at)  # updated_at for filters and sorts
    doc["last_values"] = {_key(k): v for k, v in doc["last_values"].items()}
    if d.location is not None:
        doc["geo"] = {"type": "Point", "coordinates": [d.location.lon, d.location.lat]}
    return doc


# a repeated METADATA report may change these; user-set fields stay (see SqliteStore)
_DER_METADATA = ("device_class", "device_type", "aggregator_id", "account_id", "updated_at",
                 "updated_us", "telemetry", "end_device_mrids")


def _der_upsert(d: Der) -> list[UpdateOne]:
    """Upsert keyed on (ven_id, resource_id), as SqliteStore._write_ders.

    nx-27017 has no pipeline updates, so "coalesce(existing location, new)" is a second,
    conditional update instead of one ``$ifNull`` pipeline; it is idempotent on both.
    """
    doc = _der_doc(d)
    key = {"ven_id": d.ven_id, "resource_id": d.resource_id}
    update: Doc = {k: doc.pop(k) for k in _DER_METADATA}
    if d.max_capacity is not None:
        update["max_capacity"] = doc.pop("max_capacity")
    for k in ("ven_id", "resource_id", "version"):
        doc.pop(k)
    ops = [UpdateOne(key, {"$set": update, "$setOnInsert": doc, "$inc": {"version": 1}},
                     upsert=True)]
    if d.location is not None:
        ops.append(UpdateOne({**key, "location": None},
                             {"$set": {"location": doc["location"], "geo": doc["geo"]}}))
    return ops


def _der(doc: Doc) -> Der:
    doc = {k: v for k, v in doc.items()
           if k not in ("_id", "reported_online", "geo", "updated_us")}
    doc["last_values"] = {_unkey(k): v for k, v in (doc.get("last_values") or {}).items()}
    return Der.model_validate(doc)


def _status_op(u: DerStatusUpdate, ven_liveness: dict[str, str]) -> UpdateOne:
    at = _iso(u.at)
    fields: Doc = {"last_report_at": at, "updated_at": at, "updated_us": epoch_us(u.at)}
    online = _online_flag(u.status)
    if u.status is not None:
        fields["status"] = _json(u.status)
    if online is not None:
        fields["reported_online"] = online
    # a DER that says it is offline is offline; one that says online follows its VEN
    if online == 0:
        fields["liveness"] = Liveness.OFFLINE.value
    elif online == 1 and u.device_id in ven_liveness:
        fields["liveness"] = ven_liveness[u.device_id]
    for k, v in u.values.items():
        fields[f"last_values.{_key(k)}"] = _json(v)
    if u.max_capacity is not None:
        fields["max_capacity"] = u.max_capacity
    if u.available_capacity is not None:
        fields["available_capacity"] = u.available_capacity
    return UpdateOne({"_id": u.device_id}, {"$set": fields, "$inc": {"version": 1}})


def _spec_op(r: ReportSpec) -> ReplaceOne:
    return ReplaceOne({"ven_id": r.ven_id, "report_specifier_id": r.report_specifier_id},
                      _json(r), upsert=True)


def _request_op(r: ReportRequestRecord) -> ReplaceOne:
    # a fresh ObjectId per write keeps SQLite's "INSERT OR REPLACE moves it last" order
    return ReplaceOne({"ven_id": r.ven_id, "report_request_id": r.report_request_id},
                      {**_json(r), "ord": ObjectId()}, upsert=True)


def _outbox_doc(m: OutboxMessage, seq: int) -> Doc:
    return {**_json(m), "_id": seq, "seq": seq}


def _log_doc(e: LogEntry) -> Doc:
    doc = _json(e)
    doc["data"] = json.loads(json.dumps(e.data, default=str))
    return {**doc, "_id": e.seq, "written": time.time()}


def _store_error(exc: PyMongoError) -> StoreError:
    if isinstance(exc, DuplicateKeyError) or (
        isinstance(exc, BulkWriteError)
        and any(e.get("code") == 11000 for e in exc.details.get("writeErrors", []))
    ):
        return Conflict(str(exc))
    return StoreError(str(exc))


def _parse_outbox(doc: Doc) -> BaseModel:
    return OutboxMessage.model_validate(_strip(doc))


def _parse_log(doc: Doc) -> BaseModel:
    return LogEntry.model_validate(_strip(doc))


_KIND_READ: dict[str, tuple[str, list[tuple[str, int]], Callable[[Doc], BaseModel]]] = {
    "ven": ("vens", [("ven_id", 1)], _ven),
    "der": ("ders", [("ven_id", 1), ("resource_id", 1)], _der),
    "report_spec": ("report_specs", [("ven_id", 1), ("report_specifier_id", 1)],
                    lambda d: ReportSpec.model_validate(_strip(d))),
    "report_request": ("report_requests", [("ord", 1)],
                       lambda d: ReportRequestRecord.model_validate(_strip(d))),
    "outbox": ("outbox", [("seq", 1)], _parse_outbox),
    "log": ("log", [("seq", 1)], _parse_log),
}
_KIND_READ.update(VIEW_KIND_READ)


def _import_ops(kind: str, records: Iterable[BaseModel]) -> tuple[str, list[Any]]:
    if kind in VIEW_KIND_READ:
        return view_import_ops(kind, list(records))
    if kind == "ven":
        return "vens", [ReplaceOne({"_id": r.ven_id}, _ven_doc(r), upsert=True)
                        for r in records if isinstance(r, Ven)]
    if kind == "der":
        return "ders", [ReplaceOne({"_id": r.device_id}, _der_doc(r), upsert=True)
                        for r in records if isinstance(r, Der)]
    if kind == "report_spec":
        return "report_specs", [_spec_op(r) for r in records if isinstance(r, ReportSpec)]
    if kind == "report_request":
        return "report_requests", [
            _request_op(r) for r in records if isinstance(r, ReportRequestRecord)]
    if kind == "outbox":
        return "outbox", [InsertOne(_outbox_doc(r, r.seq or 0))
                          for r in records if isinstance(r, OutboxMessage)]
    if kind == "log":
        return "log", [InsertOne(_log_doc(r)) for r in records if isinstance(r, LogEntry)]
    raise ValueError(f"unknown kind {kind!r}")
