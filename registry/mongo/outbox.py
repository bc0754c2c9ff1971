"""The outbox on MongoDB: FIFO per VEN, each message claimed once (find_one_and_delete)."""

from __future__ import annotations

from pymongo import InsertOne

from registry.models import OutboxMessage
from registry.mongo.conn import MongoConn, Session
from registry.mongo.docs import outbox_doc, outbox_of
from registry.port import Batch

_OLDEST = [("seq", 1)]


async def claim_next(c: MongoConn, ven_id: str) -> OutboxMessage | None:
    # the delete is the claim: the server hands each document to one caller only
    doc = await c.retry(lambda: c.col("outbox").find_one_and_delete(
        {"ven_id": ven_id}, sort=_OLDEST))
    return outbox_of(doc) if doc else None


async def pending_count(c: MongoConn, ven_id: str) -> int:
    return await c.retry(lambda: c.col("outbox").count_documents({"ven_id": ven_id}))


# --- inside Store.commit ---------------------------------------------------------------


async def write_outbox(c: MongoConn, batch: Batch, s: Session) -> None:
    """clear_outbox_of, then the new messages under reserved sequence numbers."""
    for ven_id in batch.clear_outbox_of:
        await c.do(s, lambda v=ven_id: c.col("outbox").delete_many({"ven_id": v}, session=s))
    if batch.outbox:
        messages = batch.outbox
        first = await c.reserve("outbox", len(messages), s)
        docs = [outbox_doc(m, first + i) for i, m in enumerate(messages)]
        await c.bulk(s, "outbox", [InsertOne(d) for d in docs])
