"""/api/v1/vens: the VENs the caller may see, and one VEN with its DERs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from registry.api.common import ApiError, json_response, scope_of, store_of
from registry.api.models import DiscoveryQuery, VenDetail, VenList, VenOut
from registry.api.openapi import Op
from registry.models import Ven


def _ven(ven: Ven) -> dict[str, Any]:
    fields = set(VenOut.model_fields)
    return VenOut.model_validate(ven.model_dump(include=fields)).model_dump(mode="json")


async def list_vens(request: web.Request) -> web.Response:
    scope, store = scope_of(request), store_of(request)
    vens = await store.list_vens(scope)
    pending = await store.outbox_pending([v.ven_id for v in vens], scope)
    items = [_ven(v) | {"pending_outbox": pending.get(v.ven_id, 0)} for v in vens]
    return json_response({"items": items})


async def get_ven(request: web.Request) -> web.Response:
    scope = scope_of(request)
    store = store_of(request)
    ven = await store.find_ven(request.match_info["ven_id"], scope)
    if ven is None:
        raise ApiError(404, "not found", "no such VEN")
    page = await store.find_ders(DiscoveryQuery(ven_id=[ven.ven_id], limit=1000), scope)
    body = _ven(ven)
    body["ders"] = [h.der.model_dump(mode="json") for h in page.items]
    return json_response(body)


def operations() -> list[Op]:
    return [
        Op("GET", "/v1/vens", list_vens, "VENs", response=VenList),
        Op("GET", "/v1/vens/{ven_id}", get_ven, "One VEN with its DERs",
           path_params={"ven_id": "the venID"}, response=VenDetail, errors=(404,)),
    ]
