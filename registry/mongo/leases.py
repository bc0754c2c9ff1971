"""Job leases on MongoDB (registry.port.leases): one document per lease in ``leases``.

Every step is one conditional single-document write, so of two nodes racing for an
expired lease exactly one wins: renew matches (holder, token), a take-over matches an
expiry in the past and ``$inc``s the token, a first acquisition is an insert (a duplicate
key means another node was first). Documents are never deleted: the token only grows.

Fencing (``check_fence``): in transaction mode the check is a write to the lease document
inside the commit's transaction, so a concurrent take-over conflicts with the commit and
one of them is retried. Without transactions (nx-27017, a lone mongod) it is a read just
before the work: a take-over in between is not caught, and the work's own conditional
writes (liveness transitions name the old state) keep the result right.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from registry.mongo.conn import Doc, MongoConn, Session
from registry.port import Conflict
from registry.port.leases import Fencing, Lease, LeaseLost, Shard, fences_of

COLL = "leases"


def _lease(doc: Doc) -> Lease:
    at = datetime.fromtimestamp(doc["expires_us"] / 1_000_000, UTC)
    return Lease(doc["_id"], doc["holder"], int(doc["token"]), at)


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


async def acquire(c: MongoConn, job: str, holder: str, ttl_s: float,
                  now: datetime) -> Lease | None:
    expires = _us(now + timedelta(seconds=ttl_s))
    col = c.col(COLL)
    doc = await c.retry(lambda: col.find_one_and_update(
        {"_id": job, "holder": holder}, {"$set": {"expires_us": expires}},
        return_document=ReturnDocument.AFTER))
    if doc is None:  # someone else's, or nobody's: take it over if it has expired
        doc = await c.retry(lambda: col.find_one_and_update(
            {"_id": job, "expires_us": {"$lte": _us(now)}},
            {"$set": {"holder": holder, "expires_us": expires}, "$inc": {"token": 1}},
            return_document=ReturnDocument.AFTER))
    if doc is None:
        try:
            await c.retry(lambda: col.insert_one(
                {"_id": job, "holder": holder, "token": 1, "expires_us": expires}))
        except (DuplicateKeyError, Conflict):
            return None  # held by another node (or it was just created by one)
        doc = {"_id": job, "holder": holder, "token": 1, "expires_us": expires}
    return _lease(doc)


async def renew(c: MongoConn, lease: Lease, ttl_s: float, now: datetime) -> Lease | None:
    expires = _us(now + timedelta(seconds=ttl_s))
    doc = await c.retry(lambda: c.col(COLL).find_one_and_update(
        {"_id": lease.job, "holder": lease.holder, "token": lease.token},
        {"$set": {"expires_us": expires}}, return_document=ReturnDocument.AFTER))
    return _lease(doc) if doc is not None else None


async def release(c: MongoConn, lease: Lease) -> None:
    await c.retry(lambda: c.col(COLL).update_one(
        {"_id": lease.job, "holder": lease.holder, "token": lease.token},
        {"$set": {"expires_us": 0}}))


async def list_leases(c: MongoConn, prefix: str) -> list[Lease]:
    flt = {"_id": {"$regex": "^" + re.escape(prefix)}} if prefix else {}
    docs = await c.retry(lambda: c.col(COLL).find(flt).sort("_id", 1).to_list())
    return [_lease(d) for d in docs]


async def check_fence(c: MongoConn, fencing: Fencing, s: Session) -> None:
    """LeaseLost unless every fence's token is current (see the module docstring)."""
    for fence in fences_of(fencing):
        flt = {"_id": fence.job, "token": fence.token}
        if s is not None:  # a write: a concurrent take-over conflicts with this transaction
            res = await c.col(COLL).update_one(flt, {"$inc": {"fenced_commits": 1}},
                                               session=s)
            found = res.matched_count == 1
        else:
            found = await c.retry(lambda f=flt: c.col(COLL).find_one(f, {"_id": 1})) is not None
        if not found:
            raise LeaseLost(f"lease {fence.job!r} token {fence.token} is no longer current")


def _cls(chars: list[str]) -> str:
    return "[" + "".join(f"\\x{ord(c):02x}" for c in chars) + "]" if chars else "(?!)"


def shard_pattern(shard: Shard) -> str:
    """registry.port.leases.shard_of as a regex over the end of the id: two hex digits by
    value, else the last character by code point (non-ASCII: shard 0)."""
    n, wanted = shard.count, set(shard.indices)
    digits = "0123456789abcdefABCDEF"
    value = {c: int(c, 16) for c in digits}
    pairs = []
    for v1 in range(16):
        firsts = [c for c in digits if value[c] == v1]
        seconds = [c for c in digits if (v1 * 16 + value[c]) % n in wanted]
        if seconds:
            pairs.append(_cls(firsts) + _cls(seconds))
    other = [chr(o) for o in range(128) if o % n in wanted and chr(o) not in digits]
    hexes = [c for c in digits if ord(c) % n in wanted]
    alts = [*pairs, _cls(other), f"(?:^|[^0-9a-fA-F]){_cls(hexes)}"]
    if 0 in wanted:
        alts.append("[^\\x00-\\x7f]")
    return "(?:" + "|".join(alts) + ")$"


def shard_filter(shard: Shard | None) -> Doc:
    """The VENs of one shard by ``_id`` (the VEN id): a regex nx-27017 and MongoDB both
    evaluate (the sweep reads non-offline VENs anyway, so no index is lost)."""
    if shard is None or shard.count <= 1:
        return {}
    return {"_id": {"$regex": shard_pattern(shard)}}
