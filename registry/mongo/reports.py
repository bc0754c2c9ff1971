"""Report specs and report requests on MongoDB: reads and the batch writes."""

from __future__ import annotations

from pymongo import UpdateOne

from registry.models import ReportRequestRecord, ReportRequestState, ReportSpec
from registry.mongo.conn import MongoConn, Session
from registry.mongo.docs import request_of, request_op, spec_of, spec_op
from registry.port import Batch


async def report_specs_of_ven(c: MongoConn, ven_id: str) -> list[ReportSpec]:
    docs = await c.retry(
        lambda: c.col("report_specs").find({"ven_id": ven_id}).sort("report_specifier_id", 1)
        .to_list()
    )
    return [spec_of(d) for d in docs]


async def get_report_request(
    c: MongoConn, ven_id: str, report_request_id: str
) -> ReportRequestRecord | None:
    flt = {"ven_id": ven_id, "report_request_id": report_request_id}
    doc = await c.retry(lambda: c.col("report_requests").find_one(flt))
    return request_of(doc) if doc else None


async def report_requests_of_ven(c: MongoConn, ven_id: str) -> list[ReportRequestRecord]:
    docs = await c.retry(
        lambda: c.col("report_requests").find({"ven_id": ven_id}).sort("ord", 1).to_list()
    )
    return [request_of(d) for d in docs]


# --- inside Store.commit ---------------------------------------------------------------


async def write_specs(c: MongoConn, batch: Batch, s: Session) -> None:
    """replace_report_specs_of, then the report_specs of the batch."""
    for ven_id in batch.replace_report_specs_of:
        await c.do(s, lambda v=ven_id: c.col("report_specs").delete_many(
            {"ven_id": v}, session=s))
    if batch.report_specs:
        await c.bulk(s, "report_specs", [spec_op(r) for r in batch.report_specs])


async def write_requests(c: MongoConn, batch: Batch, s: Session) -> None:
    """cancel_report_requests_of, then report_requests, then report_request_states."""
    cancelled = ReportRequestState.CANCELLED.value
    for ven_id in batch.cancel_report_requests_of:
        await c.do(s, lambda v=ven_id: c.col("report_requests").update_many(
            {"ven_id": v, "state": {"$ne": cancelled}},
            {"$set": {"state": cancelled}}, session=s))
    if batch.report_requests:
        await c.bulk(s, "report_requests", [request_op(r) for r in batch.report_requests])
    if batch.report_request_states:
        ops = [
            UpdateOne({"ven_id": v, "report_request_id": r}, {"$set": {"state": st.value}})
            for v, r, st in batch.report_request_states
        ]
        await c.bulk(s, "report_requests", ops)
