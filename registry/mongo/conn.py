"""The MongoDB connection: client settings, retries, transactions and bulk writes.

Every entity module of this package takes a :class:`MongoConn`. On a replica set or
mongos, ``unit`` runs its work in one multi-document transaction; on a standalone server
(nx-27017, a lone mongod) it runs the work directly (see ``registry.mongo.store``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pymongo import AsyncMongoClient, InsertOne, ReturnDocument
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

from registry.mongo.caps import Capabilities, detect, replicated
from registry.port import Conflict, StoreError, StoreUnavailable
from vtn.config import StoreConfig

T = TypeVar("T")
log = logging.getLogger(__name__)
Doc = dict[str, Any]
Session = AsyncClientSession | None

TRANSIENT = (
    AutoReconnect,
    NetworkTimeout,
    ServerSelectionTimeoutError,
    ConnectionFailure,
    WTimeoutError,
)
BULK_OPS = 500  # operations per bulk_write round trip (see MongoConn.bulk)


def hosts_of(url: str) -> str:
    """host:port list of a MongoDB URL, without credentials (for messages and logs)."""
    netloc = url.split("://", 1)[-1].split("/", 1)[0]
    return netloc.rsplit("@", 1)[-1]


def db_name_of(url: str) -> str:
    path = urlsplit(url).path.lstrip("/")
    return path or "vtn"


def store_error(exc: PyMongoError) -> StoreError:
    if isinstance(exc, DuplicateKeyError) or (
        isinstance(exc, BulkWriteError)
        and any(e.get("code") == 11000 for e in exc.details.get("writeErrors", []))
    ):
        return Conflict(str(exc))
    return StoreError(str(exc))


class MongoConn:
    """One client and database, with the retry and transaction policy of the store."""

    def __init__(self, url: str, cfg: StoreConfig | None = None) -> None:
        self.url = url
        self.cfg = cfg or StoreConfig()
        self.db_name = db_name_of(url)
        # a writer that has not inserted its reserved seq after this long never will
        attempts = self.cfg.mongo_retries + 1
        self.hole_grace_s = max(5.0, self.cfg.mongo_timeout_ms / 1000 * attempts * 2)
        self._client: AsyncMongoClient[Doc] | None = None
        self._db: AsyncDatabase[Doc] | None = None
        self.transactions = False
        self.hello: dict[str, Any] = {}
        self.caps = Capabilities()  # until detect(): the portable paths only

    def make_client(self) -> AsyncMongoClient[Doc]:
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
        self._client = self.make_client()
        self._db = self._client.get_database(self.db_name)
        hello = await self._first_hello()
        # transactions need a replica set or mongos; nx-27017 and a lone mongod have neither
        self.transactions = replicated(hello)
        self.hello = hello

    async def detect(self) -> Capabilities:
        """Ask the server what it can do (registry.mongo.caps); after the indexes exist."""
        self.caps = await detect(self.db, self.hello, self.cfg.mongo_capabilities)
        self.transactions = self.caps.transactions
        return self.caps

    async def _first_hello(self) -> Doc:
        """One server selection (``mongo_timeout_ms``), not the retried ones of later
        calls: a server that is not there fails start-up in seconds, with one progress
        line while waiting, and a one-line :class:`StoreUnavailable`."""
        where = hosts_of(self.url)
        task = asyncio.ensure_future(self.db.command("hello"))
        try:
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if not done:
                log.warning("waiting for MongoDB at %s (up to %.0f s)", where,
                            self.cfg.mongo_timeout_ms / 1000)
            return await task
        except PyMongoError as exc:
            await self.close()
            reason = str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0]
            raise StoreUnavailable(
                f"unavailable, cannot reach MongoDB at {where}: {reason}") from exc

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

    # --- retries and transactions -------------------------------------------------

    async def retry(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run op, retrying transient failures with bounded exponential backoff."""
        attempts = max(self.cfg.mongo_retries, 0) + 1
        for attempt in range(attempts):
            try:
                return await op()
            except TRANSIENT as exc:
                if attempt == attempts - 1:
                    raise StoreUnavailable(f"mongodb unavailable: {exc}") from exc
            except BulkWriteError:
                raise  # per-operation errors: the caller decides (see bulk)
            except OperationFailure as exc:
                if not exc.has_error_label("RetryableWriteError") or attempt == attempts - 1:
                    raise store_error(exc) from exc
            await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
        raise StoreUnavailable("unreachable")  # pragma: no cover

    async def do(self, s: Session, op: Callable[[], Awaitable[T]]) -> T:
        # inside a transaction the whole transaction is retried, not one statement
        return await op() if s is not None else await self.retry(op)

    async def unit(self, work: Callable[[Session], Awaitable[T]]) -> T:
        """Run work in a transaction when the server has them, else directly."""
        if not self.transactions:
            return await work(None)
        client = self._client
        assert client is not None

        async def in_txn() -> T:
            async with client.start_session() as s:
                return await s.with_transaction(work)

        return await self.retry(in_txn)

    async def bulk(self, s: Session, coll: str, ops: list[Any]) -> None:
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
                await self.do(s, lambda c=chunk: self.col(coll).bulk_write(
                    c, ordered=True, session=s))
                start += len(chunk)
            except BulkWriteError as exc:
                if s is not None:
                    raise  # keep the TransientTransactionError label for with_transaction
                errors = exc.details.get("writeErrors", [])
                if not errors or errors[0].get("code") != 11000:
                    raise store_error(exc) from exc
                index = start + errors[0]["index"]
                if isinstance(ops[index], InsertOne):
                    start = index + 1  # already there (a retried insert, a re-import)
                elif index == failed_at:
                    raise store_error(exc) from exc  # a real conflict, not a race
                else:
                    start = failed_at = index

    async def reserve(self, name: str, n: int, s: Session) -> int:
        """Reserve n sequence numbers (outbox, log); returns the first."""
        doc = await self.do(s, lambda: self.col("counters").find_one_and_update(
            {"_id": name}, {"$inc": {"seq": n}}, upsert=True,
            return_document=ReturnDocument.AFTER, session=s))
        return int(doc["seq"]) - n + 1
