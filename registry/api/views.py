"""/api/v1/views (deprecated: /api/v1/groups): aggregators' groups defined by a filter.

An aggregator token manages only its own views (its aggregator_id is implied); a service
token names the aggregator; prosumers have no views. A view's DERs are always read in
the owner's aggregator scope intersected with the caller's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from registry import views
from registry.api.common import (
    ApiError,
    der_item,
    from_validation,
    invalid,
    json_response,
    parse_query,
    principal_of,
    read_json,
    store_of,
)
from registry.api.models import DerList, FieldError
from registry.api.openapi import Op
from registry.discovery import CursorError, DiscoveryQuery
from registry.models import VIEW_NAME_PATTERN, View


class ViewIn(BaseModel):
    """A view to create. ``filters`` takes the filter parameters of GET /v1/ders as JSON
    (lists as arrays): device_class, device_type, ven_id, account_id, availability flags,
    liveness, capacity bounds, updated_since, q, near + radius_m, bbox."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=VIEW_NAME_PATTERN, description="unique per aggregator; not 'all'")
    aggregator_id: str | None = Field(
        None, description="owner; implied for aggregator tokens, required for service tokens"
    )
    description: str | None = Field(None, max_length=500)
    filters: dict[str, Any] = Field(default_factory=dict)


class ViewList(BaseModel):
    items: list[View]


class ViewDersQuery(BaseModel):
    """Paging, sorting and projection over a view's DERs (the filters are the view's)."""

    model_config = ConfigDict(extra="forbid")

    sort: str | None = Field(None, description="as in GET /v1/ders")
    fields: str | None = Field(None, description="as in GET /v1/ders")
    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=2000)
    total: bool = False


def _principal(request: web.Request) -> Any:
    principal = principal_of(request)
    if principal.role == "prosumer":
        raise ApiError(403, "forbidden", "views belong to aggregators")
    return principal


def _owner(principal: Any, aggregator_id: str | None) -> str:
    if principal.role == "aggregator":
        if aggregator_id not in (None, principal.aggregator_id):
            raise ApiError(403, "forbidden", "an aggregator manages only its own views")
        return str(principal.aggregator_id)
    if not aggregator_id:
        raise invalid("aggregator_id", "required with a service token")
    return aggregator_id


async def _visible_view(request: web.Request) -> View:
    principal = _principal(request)
    owner = request.match_info["aggregator_id"]
    if principal.role == "aggregator" and owner != principal.aggregator_id:
        raise ApiError(404, "not found", "no such view")  # don't reveal others' views
    group = await views.find_view(store_of(request), owner, request.match_info["name"])
    if group is None or not (group.name == "all" or views.view_shaped(group)):
        raise ApiError(404, "not found", "no such view")  # a group with members: /groups
    return views.as_view(group)


async def list_views(request: web.Request) -> web.Response:
    principal = _principal(request)
    aggregator_id = request.query.get("aggregator_id")
    store = store_of(request)
    if principal.role == "aggregator":
        owner = _owner(principal, aggregator_id)
        items = [views.as_view(g) for g in await views.views_of(store, owner)
                 if g.name == "all" or views.view_shaped(g)]
    else:
        items = await views.list_views(store, principal.scope, aggregator_id)
    return json_response({"items": [v.model_dump(mode="json") for v in items]})


async def create_view(request: web.Request) -> web.Response:
    principal = _principal(request)
    try:
        body = ViewIn.model_validate(await read_json(request))
    except ValidationError as exc:
        raise from_validation(exc, "body") from exc
    owner = _owner(principal, body.aggregator_id)
    try:
        view, _ = await views.save_view(
            store_of(request), owner, body.name, body.filters, body.description,
            principal.subject, datetime.now(UTC), replace=False,
        )
    except views.ViewError as exc:
        raise ApiError(400, "invalid request", "invalid view filters", [
            FieldError(field=f"filters.{e['field']}", message=e["message"]) for e in exc.errors
        ]) from exc
    except views.ReservedName as exc:
        raise invalid("name", str(exc)) from exc
    except FileExistsError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    location = f"{request.path.rstrip('/')}/{owner}/{view.name}"
    return json_response(view.model_dump(mode="json"), status=201, headers={"Location": location})


async def get_view(request: web.Request) -> web.Response:
    return json_response((await _visible_view(request)).model_dump(mode="json"))


async def delete_view(request: web.Request) -> web.Response:
    view = await _visible_view(request)
    if view.name == "all":
        raise ApiError(409, "conflict", "the default view cannot be deleted")
    await views.delete_view(store_of(request), view.aggregator_id, view.name,
                            _principal(request).subject, datetime.now(UTC))
    return web.Response(status=204)


async def view_ders(request: web.Request) -> web.Response:
    """The view's DERs: its filters, the owner's scope and the caller's scope."""
    view = await _visible_view(request)
    paging = parse_query(ViewDersQuery, request)
    raw: dict[str, Any] = {**view.filters, **paging.model_dump(exclude_none=True)}
    try:
        query = DiscoveryQuery.model_validate(raw)
    except ValidationError as exc:
        raise from_validation(exc, "query") from exc
    store = store_of(request)
    scope = principal_of(request).scope
    if scope.is_service:  # a service caller sees what the owner would
        scope = views.aggregator_scope(view.aggregator_id)
    elif scope.aggregator_id != view.aggregator_id:
        raise ApiError(404, "not found", "no such view")
    try:
        page = await store.find_ders(query, scope)
    except CursorError as exc:
        raise invalid("cursor", str(exc)) from exc
    body: dict[str, Any] = {"items": [der_item(h, query.fields) for h in page.items],
                            "next_cursor": page.next_cursor}
    if page.total is not None:
        body["total"] = page.total
    return json_response(body)


def operations() -> list[Op]:
    path = {"aggregator_id": "the owning aggregator", "name": "the view name"}
    return [
        Op("GET", "/v1/views", list_views, "Views", response=ViewList,
           errors=(403,), description="An aggregator sees its views, the default view "
           "'all' first; a service token sees every saved view (filter with "
           "?aggregator_id=)."),
        Op("POST", "/v1/views", create_view, "Save a view", body=ViewIn, response=View,
           errors=(400, 403, 409), status=201,
           description="A saved discovery query; aggregator VENs are offered each of "
           "their views as a METADATA report over OpenADR."),
        Op("GET", "/v1/views/{aggregator_id}/{name}", get_view, "One view",
           path_params=path, response=View, errors=(403, 404)),
        Op("DELETE", "/v1/views/{aggregator_id}/{name}", delete_view, "Delete a view",
           path_params=path, errors=(403, 404, 409), status=204),
        Op("GET", "/v1/views/{aggregator_id}/{name}/ders", view_ders, "A view's DERs",
           path_params=path, query=ViewDersQuery, response=DerList, errors=(403, 404)),
    ]
