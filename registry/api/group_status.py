"""/api/v1/groups/{id}/status, /forecast and /cim: a group's roll-up now, its available
flexibility per time slot, and both as IEC 61968-5 names them (registry.group_status,
registry.group_cim; formulas in docs/der-groups.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from registry import group_status
from registry.api.common import invalid, json_response, now_of, parse_query, scope_of, store_of
from registry.api.group_access import visible_group
from registry.api.openapi import Op
from registry.group_cim import cim_group
from registry.groups import valid


class ForecastQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime | None = Field(None, description="first slot (default: now, "
                                        "rounded down to the slot)")
    horizon_h: float = Field(24.0, gt=0, le=168, description="hours ahead")
    slot_min: float = Field(15.0, ge=1, le=1440, description="minutes per slot")


async def _checked(request: web.Request):  # noqa: ANN202 - a Group
    group = await visible_group(request)
    if not valid(group):
        raise invalid("filters", "the group's stored filters no longer validate; fix them "
                      "with PATCH")
    return group


async def status(request: web.Request) -> web.Response:
    group = await _checked(request)
    rollup = await group_status.rollup(store_of(request), group, scope_of(request),
                                       now_of(request))
    return json_response(rollup.as_json())


def _start(q: ForecastQuery, now: datetime, slot: timedelta) -> datetime:
    if q.start is not None:
        return q.start
    epoch = datetime(2000, 1, 1, tzinfo=now.tzinfo)
    return now - (now - epoch) % slot


async def forecast(request: web.Request) -> web.Response:
    group = await _checked(request)
    q = parse_query(ForecastQuery, request)
    slot = timedelta(minutes=q.slot_min)
    try:
        body = await group_status.forecast(
            store_of(request), group, scope_of(request), _start(q, now_of(request), slot),
            timedelta(hours=q.horizon_h), slot)
    except group_status.ForecastError as exc:
        raise invalid("horizon_h", str(exc)) from exc
    return json_response(body)


async def cim(request: web.Request) -> web.Response:
    group = await _checked(request)
    rollup = await group_status.rollup(store_of(request), group, scope_of(request),
                                       now_of(request))
    return json_response(cim_group(group, rollup))


def operations() -> list[Op]:
    gid = {"group_id": "the group's id (mRID), or the name of one of the caller's groups"}
    return [
        Op("GET", "/v1/groups/{group_id}/status", status, "A group's status roll-up",
           path_params=gid, errors=(400, 403, 404),
           description="Members, online/stale/offline, DR-available, in an active event, "
           "opted out now, Σ max and Σ available capacity (W) in total, per device type "
           "and per class — as the caller may see the members."),
        Op("GET", "/v1/groups/{group_id}/forecast", forecast,
           "A group's available flexibility per time slot", path_params=gid,
           query=ForecastQuery, errors=(400, 403, 404),
           description="available_w per slot from availability flags, optOut schedules, "
           "liveness now and events already scheduled (docs/der-groups.md)."),
        Op("GET", "/v1/groups/{group_id}/cim", cim, "The group as IEC 61968-5 names it",
           path_params=gid, errors=(400, 403, 404),
           description="EndDeviceGroup with mRID, Names, version, status, DERFunction and "
           "DERMonitorableParameter (kW: yMultiplier k, yUnit W)."),
    ]
