"""/api/v1/overview and /api/v1/ders/{id}/telemetry: what the operator dashboard shows
first, computed in the store within the caller's scope (registry.port.overview).

Registrations are ``ven.registered`` / ``ven.reregistered`` log entries, refusals
``ven.registration_refused`` and ``security.fingerprint_mismatch`` ones, over the last
``window_s`` seconds (default one hour).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from registry.api.common import (
    ApiError,
    json_response,
    now_of,
    parse_query,
    scope_of,
    store_of,
)
from registry.api.models import DiscoveryQuery, LogQuery
from registry.api.openapi import Op
from registry.models import LogEntry

REGISTRATIONS = ("ven.registered", "ven.reregistered")
REFUSALS = ("ven.registration_refused", "security.fingerprint_mismatch")


class OverviewQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    window_s: int = Field(3600, ge=60, le=7 * 86400, description="registrations window")


class CapacityOut(BaseModel):
    ders: int
    max_w: float
    available_w: float


class CountsOut(BaseModel):
    total: int
    by_liveness: dict[str, int]


class WindowOut(BaseModel):
    window_s: int
    registrations: int
    refusals: int
    by_kind: dict[str, int]


class Overview(BaseModel):
    at: datetime
    last_seq: int = Field(description="the log's newest seq: stream with after= it")
    vens: CountsOut
    ders: CountsOut
    by_class: dict[str, CapacityOut]
    by_type: dict[str, CapacityOut]
    recent: WindowOut


class TelemetryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hours: float = Field(6, gt=0, le=24 * 31, description="how far back")


class TelemetryPoint(BaseModel):
    r_id: str
    at: datetime = Field(description="start of the bucket")
    avg_w: float
    samples: int


class Telemetry(BaseModel):
    device_id: str
    points: list[TelemetryPoint]


def _counts(by: dict[str, int]) -> dict[str, object]:
    return {"total": sum(by.values()), "by_liveness": by}


async def overview(request: web.Request) -> web.Response:
    query = parse_query(OverviewQuery, request)
    now = now_of(request)
    ov = await store_of(request).fleet_overview(
        scope_of(request), now - timedelta(seconds=query.window_s), [*REGISTRATIONS, *REFUSALS])

    def caps(bucket: dict) -> dict[str, dict[str, float]]:  # type: ignore[type-arg]
        return {k: {"ders": s.ders, "max_w": round(s.max_w, 3),
                    "available_w": round(s.available_w, 3)} for k, s in sorted(bucket.items())}

    counts = ov.log_counts
    return json_response({
        "at": now.isoformat(),
        "last_seq": await store_of(request).last_seq(),
        "vens": _counts(ov.vens_by_liveness),
        "ders": _counts(ov.ders_by_liveness),
        "by_class": caps(ov.by_class),
        "by_type": caps(ov.by_type),
        "recent": {
            "window_s": query.window_s,
            "registrations": sum(counts.get(k, 0) for k in REGISTRATIONS),
            "refusals": sum(counts.get(k, 0) for k in REFUSALS),
            "by_kind": counts,
        },
    })


async def telemetry(request: web.Request) -> web.Response:
    query = parse_query(TelemetryQuery, request)
    store, device_id = store_of(request), request.match_info["device_id"]
    if await store.get_der(device_id, scope_of(request)) is None:  # scoped: 404 outside
        raise ApiError(404, "not found", "no such DER")
    end = now_of(request)
    buckets = await store.telemetry_history([device_id], end - timedelta(hours=query.hours),
                                            end + timedelta(minutes=1))
    points = [{"r_id": b.r_id, "at": b.bucket.isoformat(),
               "avg_w": round(b.sum_w / b.count, 3) if b.count else 0.0, "samples": b.count}
              for b in sorted(buckets, key=lambda b: (b.r_id, b.bucket))]
    return json_response({"device_id": device_id, "points": points})


class MapPoints(BaseModel):
    fields: list[str]
    points: list[list[str | float]] = Field(description="one row per DER with a location")


POINT_FIELDS = ["device_id", "lat", "lon", "liveness", "device_class"]


async def map_points(request: web.Request) -> web.Response:
    query = parse_query(DiscoveryQuery, request)
    rows = await store_of(request).der_points(query, scope_of(request))
    points = [[d, round(lat, 6), round(lon, 6), live, cls] for d, lat, lon, live, cls in rows]
    return json_response({"fields": POINT_FIELDS, "points": points})


class Tail(BaseModel):
    last_seq: int


async def tail(request: web.Request) -> web.Response:
    return json_response({"last_seq": await store_of(request).last_seq()})


class RecentLog(BaseModel):
    items: list[LogEntry] = Field(description="newest first")


async def recent_log(request: web.Request) -> web.Response:
    query = parse_query(LogQuery, request)
    entries = await store_of(request).recent_log(query, scope_of(request))
    return json_response({"items": [e.model_dump(mode="json") for e in entries]})


def operations() -> list[Op]:
    return [
        Op("GET", "/v1/overview", overview, "Fleet overview", query=OverviewQuery,
           response=Overview,
           description="VENs and DERs by liveness, summed max / available capacity by "
           "device class and type, registrations and refusals in the last window_s "
           "seconds; all within the caller's scope."),
        Op("GET", "/v1/overview/tail", tail, "The log's newest seq", response=Tail,
           description="Pass it as after= (or Last-Event-ID) to /log/stream to follow "
           "only what happens from now on."),
        Op("GET", "/v1/log/recent", recent_log, "The newest log entries", query=LogQuery,
           response=RecentLog,
           description="The newest `limit` entries matching kind / ven_id / device_id in "
           "the caller's scope, newest first (after is ignored): a DER's or VEN's "
           "history at a glance. /log reads forward from a seq."),
        Op("GET", "/v1/ders/{device_id}/telemetry", telemetry, "A DER's load history",
           query=TelemetryQuery, path_params={"device_id": "the DER's device_id"},
           response=Telemetry, errors=(404,),
           description="Average W per history bucket and rID (the buckets the measured "
           "response of DR events is computed from)."),
        Op("GET", "/v1/map", map_points, "DER points for a map", query=DiscoveryQuery,
           response=MapPoints,
           description="Every DER with a location matching the filters of GET /ders, as "
           "compact rows (sort, paging and fields are ignored): one request for a map "
           "of the whole fleet."),
    ]
