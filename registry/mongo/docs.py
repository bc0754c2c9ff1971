"""Document <-> model conversion shared by the MongoDB entity modules.

Documents are the pydantic JSON form of the models (datetimes as ISO-8601 strings, so a
round trip is exact: BSON dates keep milliseconds only), plus the few numeric fields the
queries compare: ``last_seen``/``offline_since`` of VENs are epoch floats, and DERs carry
``reported_online`` (1/0/null, as in SQLite), ``updated_us`` (see registry.mongo.discovery)
and a GeoJSON ``geo`` point.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pydantic import BaseModel
from pymongo import ReplaceOne, UpdateOne

from registry.models import (
    Der,
    DerStatus,
    Liveness,
    LogEntry,
    OutboxMessage,
    ReportRequestRecord,
    ReportSpec,
    Ven,
)
from registry.port import DerStatusUpdate

Doc = dict[str, Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def ts(dt: datetime | None) -> float | None:
    return dt.timestamp() if dt is not None else None


def dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def epoch_us(dt: datetime) -> int:
    """Microseconds since the epoch, exactly (a naive datetime counts as UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _MICROSECOND


def as_json(model: BaseModel) -> Doc:
    return model.model_dump(mode="json")


def iso(dt: datetime) -> str:
    return dt.isoformat()  # pydantic parses it back exactly


# rIDs are free text: escape the characters a field path cannot hold
def key(k: str) -> str:
    return k.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def unkey(k: str) -> str:
    return k.replace("%24", "$").replace("%2E", ".").replace("%25", "%")


def online_flag(status: DerStatus | None) -> int | None:
    # an int, not a bool: nx-27017 stores a $set boolean as 1/0, so use 1/0 everywhere
    if status is None or status.online is None:
        return None
    return int(status.online)


def strip(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k not in ("_id", "ord", "written")}


# --- VENs ----------------------------------------------------------------------------


def ven_doc(v: Ven) -> Doc:
    doc = as_json(v)
    doc["_id"] = v.ven_id
    doc["last_seen"] = ts(v.last_seen)
    doc["offline_since"] = ts(v.offline_since)
    return doc


_VEN_LIVENESS = ("liveness", "last_seen", "offline_since")


def ven_upsert(v: Ven) -> UpdateOne:
    # liveness fields are owned by mark_online / sweep: only set on insert
    doc = ven_doc(v)
    on_insert = {k: doc.pop(k) for k in _VEN_LIVENESS}
    del doc["_id"]
    return UpdateOne({"_id": v.ven_id}, {"$set": doc, "$setOnInsert": on_insert}, upsert=True)


def ven_of(doc: Doc) -> Ven:
    doc = strip(doc)
    doc["last_seen"] = dt(doc.get("last_seen"))
    doc["offline_since"] = dt(doc.get("offline_since"))
    return Ven.model_validate(doc)


# --- DERs ----------------------------------------------------------------------------


def der_doc(d: Der) -> Doc:
    doc = as_json(d)
    doc["_id"] = d.device_id
    doc["reported_online"] = online_flag(d.status)
    doc["updated_us"] = epoch_us(d.updated_at)  # updated_at for filters and sorts
    doc["last_values"] = {key(k): v for k, v in doc["last_values"].items()}
    if d.location is not None:
        doc["geo"] = {"type": "Point", "coordinates": [d.location.lon, d.location.lat]}
    return doc


# a repeated METADATA report may change these; user-set fields stay (see registry.sqlite.ders)
_DER_METADATA = ("device_class", "device_type", "aggregator_id", "account_id", "updated_at",
                 "updated_us", "telemetry", "end_device_mrids")


def der_upsert(d: Der) -> list[UpdateOne]:
    """Upsert keyed on (ven_id, resource_id), as registry.sqlite.ders.write_ders.

    nx-27017 has no pipeline updates, so "coalesce(existing location, new)" is a second,
    conditional update instead of one ``$ifNull`` pipeline; it is idempotent on both.
    """
    doc = der_doc(d)
    k = {"ven_id": d.ven_id, "resource_id": d.resource_id}
    update: Doc = {f: doc.pop(f) for f in _DER_METADATA}
    if d.max_capacity is not None:
        update["max_capacity"] = doc.pop("max_capacity")
    for f in ("ven_id", "resource_id", "version"):
        doc.pop(f)
    ops = [UpdateOne(k, {"$set": update, "$setOnInsert": doc, "$inc": {"version": 1}},
                     upsert=True)]
    if d.location is not None:
        ops.append(UpdateOne({**k, "location": None},
                             {"$set": {"location": doc["location"], "geo": doc["geo"]}}))
    return ops


def der_of(doc: Doc) -> Der:
    doc = {k: v for k, v in doc.items()
           if k not in ("_id", "reported_online", "geo", "updated_us")}
    doc["last_values"] = {unkey(k): v for k, v in (doc.get("last_values") or {}).items()}
    return Der.model_validate(doc)


def status_op(u: DerStatusUpdate, ven_liveness: dict[str, str]) -> UpdateOne:
    at = iso(u.at)
    fields: Doc = {"last_report_at": at, "updated_at": at, "updated_us": epoch_us(u.at)}
    online = online_flag(u.status)
    if u.status is not None:
        fields["status"] = as_json(u.status)
    if online is not None:
        fields["reported_online"] = online
    # a DER that says it is offline is offline; one that says online follows its VEN
    if online == 0:
        fields["liveness"] = Liveness.OFFLINE.value
    elif online == 1 and u.device_id in ven_liveness:
        fields["liveness"] = ven_liveness[u.device_id]
    for k, v in u.values.items():
        fields[f"last_values.{key(k)}"] = as_json(v)
    if u.max_capacity is not None:
        fields["max_capacity"] = u.max_capacity
    if u.available_capacity is not None:
        fields["available_capacity"] = u.available_capacity
    return UpdateOne({"_id": u.device_id}, {"$set": fields, "$inc": {"version": 1}})


# --- reports, outbox, log ----------------------------------------------------------------


def spec_op(r: ReportSpec) -> ReplaceOne:
    return ReplaceOne({"ven_id": r.ven_id, "report_specifier_id": r.report_specifier_id},
                      as_json(r), upsert=True)


def request_op(r: ReportRequestRecord) -> ReplaceOne:
    # a fresh ObjectId per write keeps SQLite's "INSERT OR REPLACE moves it last" order
    return ReplaceOne({"ven_id": r.ven_id, "report_request_id": r.report_request_id},
                      {**as_json(r), "ord": ObjectId()}, upsert=True)


def outbox_doc(m: OutboxMessage, seq: int) -> Doc:
    return {**as_json(m), "_id": seq, "seq": seq}


def log_doc(e: LogEntry) -> Doc:
    doc = as_json(e)
    doc["data"] = json.loads(json.dumps(e.data, default=str))
    return {**doc, "_id": e.seq, "written": time.time()}


def outbox_of(doc: Doc) -> OutboxMessage:
    return OutboxMessage.model_validate(strip(doc))


def log_of(doc: Doc) -> LogEntry:
    return LogEntry.model_validate(strip(doc))


def spec_of(doc: Doc) -> ReportSpec:
    return ReportSpec.model_validate(strip(doc))


def request_of(doc: Doc) -> ReportRequestRecord:
    return ReportRequestRecord.model_validate(strip(doc))
