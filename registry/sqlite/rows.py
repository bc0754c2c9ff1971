"""Row <-> model conversion shared by the SQLite entity modules, and their column lists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from registry.models import Der, Liveness, LogEntry, ReportRequestRecord, ReportRequestState, Ven

DER_COLUMNS = (
    "device_id, ven_id, resource_id, device_name, aggregator_id, account_id, device_class, "
    "device_type, availability, dr_availability, marketplace_availability, max_capacity, "
    "available_capacity, lat, lon, liveness, reported_online, status, last_values, "
    "last_report_at, updated_at, version, doc"
)
DER_NAMES = tuple(c.strip() for c in DER_COLUMNS.split(","))
VEN_SELECT = "SELECT liveness, last_seen, offline_since, doc FROM vens"
LOG_SELECT = (
    "SELECT seq, at, kind, actor, ven_id, device_id, aggregator_id, account_id, data FROM log"
)


def ts(dt: datetime | None) -> float | None:
    return dt.timestamp() if dt is not None else None


def dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def us(at: datetime | None) -> int | None:
    """Integer microseconds since the epoch (exact; a naive datetime counts as UTC)."""
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - _EPOCH) // _US


def at_us(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def ven_of(row: tuple[Any, ...] | None) -> Ven | None:
    if row is None:
        return None
    liveness, last_seen, offline_since, doc = row
    ven = Ven.model_validate_json(doc)
    ven.liveness = Liveness(liveness)
    ven.last_seen = dt(last_seen)
    ven.offline_since = dt(offline_since)
    return ven


def der_of(row: tuple[Any, ...]) -> Der:
    d = dict(zip(DER_NAMES, row, strict=True))
    doc = json.loads(d["doc"])
    doc["liveness"] = d["liveness"]
    doc["status"] = json.loads(d["status"]) or {}
    doc["last_values"] = json.loads(d["last_values"])
    doc["available_capacity"] = d["available_capacity"]
    doc["version"] = d["version"]
    doc["updated_at"] = dt(d["updated_at"])
    doc["last_report_at"] = dt(d["last_report_at"])
    doc["availability"] = bool(d["availability"])
    doc["dr_availability"] = bool(d["dr_availability"])
    doc["marketplace_availability"] = bool(d["marketplace_availability"])
    doc["max_capacity"] = d["max_capacity"]
    doc["device_class"] = d["device_class"]
    doc["device_type"] = d["device_type"]
    doc["aggregator_id"] = d["aggregator_id"]
    doc["account_id"] = d["account_id"]
    return Der.model_validate(doc)


def der_row(d: Der) -> tuple[Any, ...]:
    return (
        d.device_id,
        d.ven_id,
        d.resource_id,
        d.device_name,
        d.aggregator_id,
        d.account_id,
        d.device_class.value,
        d.device_type.value,
        int(d.availability),
        int(d.dr_availability),
        int(d.marketplace_availability),
        d.max_capacity,
        d.available_capacity,
        d.location.lat if d.location else None,
        d.location.lon if d.location else None,
        d.liveness.value,
        None if d.status.online is None else int(d.status.online),
        d.status.model_dump_json(),
        json.dumps({k: json.loads(v.model_dump_json()) for k, v in d.last_values.items()}),
        ts(d.last_report_at),
        d.updated_at.timestamp(),
        d.version,
        d.model_dump_json(),
    )


def log_entry(r: tuple[Any, ...]) -> LogEntry:
    return LogEntry(
        seq=r[0], at=dt(r[1]), kind=r[2], actor=r[3], ven_id=r[4], device_id=r[5],
        aggregator_id=r[6], account_id=r[7], data=json.loads(r[8]),
    )


def report_request(row: tuple[str, str]) -> ReportRequestRecord:
    rec = ReportRequestRecord.model_validate_json(row[1])
    rec.state = ReportRequestState(row[0])
    return rec
