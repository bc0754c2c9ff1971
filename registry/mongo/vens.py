"""VENs on MongoDB: the poll hot path, lookups, scoped lists, and the batch upsert."""

from __future__ import annotations

from registry.models import Liveness, Ven
from registry.mongo.conn import Doc, MongoConn, Session
from registry.mongo.docs import ven_of, ven_upsert
from registry.mongo.scope import and_, scope_filter
from registry.port import PollState, Scope

_POLL_FIELDS = {"registered": 1, "fingerprint": 1, "liveness": 1}


async def find_one(c: MongoConn, flt: Doc) -> Ven | None:
    doc = await c.retry(lambda: c.col("vens").find_one(flt))
    return ven_of(doc) if doc else None


async def poll_state(c: MongoConn, ven_id: str) -> PollState | None:
    doc = await c.retry(lambda: c.col("vens").find_one({"_id": ven_id}, _POLL_FIELDS))
    if doc is None:
        return None
    # the outbox is asked by claim_next itself: one round trip here, not two
    return PollState(ven_id, bool(doc.get("registered")), doc.get("fingerprint"),
                     Liveness(doc["liveness"]), True)


async def vens_where(c: MongoConn, flt: Doc) -> list[Ven]:
    docs = await c.retry(lambda: c.col("vens").find(flt).sort("ven_name", 1).to_list())
    return [ven_of(d) for d in docs]


async def list_vens(c: MongoConn, scope: Scope) -> list[Ven]:
    return await vens_where(c, scope_filter(scope))


async def find_ven(c: MongoConn, ven_id: str, scope: Scope) -> Ven | None:
    return await find_one(c, and_([scope_filter(scope), {"_id": ven_id}]))


# --- inside Store.commit ---------------------------------------------------------------


async def write_vens(c: MongoConn, vens: list[Ven], s: Session) -> None:
    await c.bulk(s, "vens", [ven_upsert(v) for v in vens])
