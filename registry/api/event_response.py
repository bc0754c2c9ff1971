"""/api/v1/events/{event_id}/response: the measured response of a DR event (issue #14).

Scoped like the event's deliveries: an aggregator sees the figures of its own DERs only,
a prosumer those of its account; see :mod:`registry.response` for the rules.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, Field

from registry.api.common import ApiError, json_response, scope_of, store_of
from registry.api.openapi import Op
from registry.response import ResponseNotFound, measured_response


class Figures(BaseModel):
    baseline_w: float | None = None
    event_w: float | None = None
    delivered_w: float | None = Field(None, description="baseline_w - event_w (W, positive: "
                                      "load reduced)")
    samples: int = 0


class DerResponse(Figures):
    device_id: str
    ven_id: str
    baseline_samples: int = 0
    baseline_source: str | None = Field(None, description="window, before (last data before "
                                        "dtstart) or null (no baseline)")


class VenResponse(Figures):
    ven_id: str
    ders: int
    ders_measured: int


class TotalResponse(Figures):
    ders: int
    ders_measured: int


class EventResponse(BaseModel):
    event_id: str
    status: str
    baseline_start: datetime
    baseline_end: datetime
    event_start: datetime
    event_end: datetime | None = None
    ders: list[DerResponse]
    vens: list[VenResponse]
    total: TotalResponse


async def get_response(request: web.Request) -> web.Response:
    try:
        body = await measured_response(store_of(request), request.match_info["event_id"],
                                       scope_of(request), datetime.now(UTC))
    except ResponseNotFound as exc:
        raise ApiError(404, "not found", "no such event") from exc
    return json_response(body)


def operations() -> list[Op]:
    return [
        Op("GET", "/v1/events/{event_id}/response", get_response,
           "Measured response of an event", path_params={"event_id": "the eventID"},
           response=EventResponse, errors=(404,),
           description="Per DER, per VEN and in total: baseline (mean load over baseline_s "
           "before dtstart), mean load while active, delivered = baseline - event load."),
    ]
