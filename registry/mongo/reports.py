"""Report specs and report requests on MongoDB: reads and the batch writes."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import UpdateOne

from registry.models import ReportRequestRecord, ReportRequestState, ReportSpec, fixed_time
from registry.mongo.conn import MongoConn, Session
from registry.mongo.docs import as_json, request_of, request_op, spec_of, spec_op
from registry.port import Batch, Conflict, TelemetryBucket

_WATCHED = ["pending", "active", "overdue", "silent", "cancel_pending"]
_UNSETTLED = ["pending", "overdue", "silent"]


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


async def due_report_requests(
    c: MongoConn, now: datetime, limit: int
) -> list[ReportRequestRecord]:
    flt = {"next_check_at": {"$ne": None, "$lte": fixed_time(now)}, "state": {"$in": _WATCHED}}
    docs = await c.retry(
        lambda: c.col("report_requests").find(flt).sort("next_check_at", 1).limit(limit)
        .to_list()
    )
    return [request_of(d) for d in docs]


async def telemetry_history(
    c: MongoConn, device_ids: list[str], start: datetime, end: datetime
) -> list[TelemetryBucket]:
    flt = {"device_id": {"$in": sorted(set(device_ids))},
           "bucket": {"$gte": start.timestamp(), "$lt": end.timestamp()}}
    docs = await c.retry(
        lambda: c.col("der_history").find(flt).sort([("device_id", 1), ("bucket", 1)])
        .to_list()
    )
    return [
        TelemetryBucket(d["device_id"], d["r_id"], datetime.fromtimestamp(d["bucket"], UTC),
                        d["sum_w"], d["n"])
        for d in docs
    ]


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
            {"$set": {"state": cancelled, "next_check_at": None}}, session=s))
    if batch.report_requests:
        await c.bulk(s, "report_requests", [request_op(r) for r in batch.report_requests])
    if batch.report_request_states:
        ops = [
            UpdateOne({"ven_id": v, "report_request_id": r}, {
                "$set": {"state": st.value} | ({"next_check_at": None} if st == cancelled else {}),
                "$inc": {"rev": 1}})
            for v, r, st in batch.report_request_states
        ]
        await c.bulk(s, "report_requests", ops)
    for rec, state, rev in batch.report_request_updates:
        flt = {"ven_id": rec.ven_id, "report_request_id": rec.report_request_id,
               "state": state.value, "rev": rev if rev else {"$in": [0, None]}}
        new = {"$set": as_json(rec)}
        res = await c.do(s, lambda f=flt, d=new: c.col("report_requests").update_one(
            f, d, session=s))
        if res.matched_count != 1:
            raise Conflict(f"report request {rec.report_request_id} changed meanwhile")
    if batch.report_request_seen:
        seen: list[UpdateOne] = []
        for ven_id, rr_id, at, data, nxt in batch.report_request_seen:
            key = {"ven_id": ven_id, "report_request_id": rr_id}
            seen.append(UpdateOne({**key, "state": {"$in": _UNSETTLED}},
                                  {"$set": {"state": "active"}}))
            seen.append(UpdateOne({**key, "acknowledged_at": None},
                                  {"$set": {"acknowledged_at": at.isoformat()}}))
            put: dict[str, object] = {
                "next_check_at": fixed_time(nxt) if nxt is not None else None}
            if data:
                put["last_report_at"] = at.isoformat()
            seen.append(UpdateOne(key, {"$set": put, "$inc": {"rev": 1}}))
        await c.bulk(s, "report_requests", seen)


async def write_telemetry(c: MongoConn, batch: Batch, s: Session) -> None:
    if batch.telemetry:
        ops = [
            UpdateOne(
                {"_id": f"{t.device_id}|{t.bucket.timestamp()!r}|{t.r_id}"},
                {"$inc": {"sum_w": t.sum_w, "n": t.count},
                 "$setOnInsert": {"device_id": t.device_id, "r_id": t.r_id,
                                  "bucket": t.bucket.timestamp()}},
                upsert=True,
            )
            for t in batch.telemetry
        ]
        await c.bulk(s, "der_history", ops)
    if batch.prune_telemetry_before is not None:
        before = batch.prune_telemetry_before.timestamp()
        await c.do(s, lambda: c.col("der_history").delete_many(
            {"bucket": {"$lt": before}}, session=s))
