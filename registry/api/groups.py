"""/api/v1/groups: DER groups (IEC 61968-5 EndDeviceGroup) — create, read, change,
delete, and their members (docs/der-groups.md). Status, forecast and the CIM view are in
registry.api.group_status. Access rules: registry.api.group_access.

Changes carry the group's version as ETag; If-Match makes a change conditional (412 when
stale, like DER patches). Every change is one commit with one log entry.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from registry import groups
from registry.api.common import (
    ApiError,
    from_validation,
    invalid,
    json_response,
    now_of,
    parse_query,
    read_json,
    scope_of,
    store_of,
)
from registry.api.group_access import (
    changeable_group,
    etag,
    group_principal,
    if_match,
    visible_group,
)
from registry.api.models import FieldError
from registry.api.openapi import Op
from registry.group_model import GROUP_NAME_PATTERN, MAX_STATIC_MEMBERS, Group
from registry.port import Conflict, NameTaken

_IDS = Field(default_factory=list, max_length=MAX_STATIC_MEMBERS)


class GroupIn(BaseModel):
    """A group to create. ``filters`` takes the filter parameters of GET /v1/ders as JSON
    (lists as arrays); ``null`` or absent: a static group of ``include`` only."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=GROUP_NAME_PATTERN, description="unique per owner; not 'all'")
    aggregator_id: str | None = Field(
        None, min_length=1, description="owner; implied for aggregator tokens; absent with a "
        "service token: the service's own group")
    description: str | None = Field(None, max_length=500)
    filters: dict[str, Any] | None = None
    include: list[str] = _IDS
    exclude: list[str] = _IDS


class GroupPatch(BaseModel):
    """Fields to change; ``filters: null`` makes the group static."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=GROUP_NAME_PATTERN)
    description: str | None = Field(None, max_length=500)
    filters: dict[str, Any] | None = None


class MembersChange(BaseModel):
    """Explicit members: include, exclude (even if the filter matches), or remove (back
    to what the filter says). One change, one log entry, version + 1."""

    model_config = ConfigDict(extra="forbid")

    include: list[str] = _IDS
    exclude: list[str] = _IDS
    remove: list[str] = _IDS


class GroupList(BaseModel):
    items: list[Group]


class MemberItem(BaseModel):
    device_id: str
    ven_id: str
    resource_id: str
    aggregator_id: str | None
    device_type: str
    device_class: str
    liveness: str
    availability: bool
    dr_availability: bool
    max_capacity: float | None
    available_capacity: float | None


class MemberList(BaseModel):
    items: list[MemberItem]
    next_cursor: str | None = None


class MembersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(1000, ge=1, le=5000)
    cursor: str | None = Field(None, max_length=200, description="the last device_id seen")


def _group_errors(exc: groups.GroupError, prefix: str) -> ApiError:
    return ApiError(400, "invalid request", "invalid group", [
        FieldError(field=f"{prefix}{e['field']}", message=e["message"]) for e in exc.errors])


async def list_groups(request: web.Request) -> web.Response:
    principal = group_principal(request)
    store = store_of(request)
    owner = request.query.get("aggregator_id")
    items = await store.list_groups(principal.scope, owner)
    if principal.role == "aggregator":
        assert principal.aggregator_id is not None
        own = groups.default_group(principal.aggregator_id)
        items = [own, *(g for g in items if g.name != own.name)]
    return json_response({"items": [g.model_dump(mode="json") for g in items]})


async def create_group(request: web.Request) -> web.Response:
    principal = group_principal(request)
    try:
        body = GroupIn.model_validate(await read_json(request))
    except ValidationError as exc:
        raise from_validation(exc, "body") from exc
    owner = body.aggregator_id
    if principal.role == "aggregator":
        if owner not in (None, principal.aggregator_id):
            raise ApiError(403, "forbidden", "an aggregator manages only its own groups")
        owner = principal.aggregator_id
    try:
        group = await groups.create_group(
            store_of(request), owner, body.name, description=body.description,
            filters=body.filters, include=body.include, exclude=body.exclude,
            actor=principal.subject, now=now_of(request))
    except groups.GroupError as exc:
        raise _group_errors(exc, "") from exc
    except groups.ReservedName as exc:
        raise invalid("name", str(exc)) from exc
    except Conflict as exc:
        raise ApiError(409, "conflict", f"a group named {body.name!r} exists") from exc
    return json_response(group.model_dump(mode="json"), status=201, headers={
        "Location": f"{request.path.rstrip('/')}/{group.group_id}", "ETag": etag(group)})


async def get_group(request: web.Request) -> web.Response:
    group = await visible_group(request)
    return json_response(group.model_dump(mode="json"), headers={"ETag": etag(group)})


async def patch_group(request: web.Request) -> web.Response:
    group = await changeable_group(request)
    principal = group_principal(request)
    body = await read_json(request)
    try:
        patch = GroupPatch.model_validate(body)
    except ValidationError as exc:
        raise from_validation(exc, "body") from exc
    changes = {k: getattr(patch, k) for k in patch.model_fields_set}
    if "name" in changes and changes["name"] is None:
        raise invalid("name", "may not be null")
    try:
        new = await groups.update_group(store_of(request), group, changes,
                                        if_version=if_match(request),
                                        actor=principal.subject, now=now_of(request))
    except groups.GroupError as exc:
        raise _group_errors(exc, "filters.") from exc
    except groups.ReservedName as exc:
        raise invalid("name", str(exc)) from exc
    except NameTaken as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    except Conflict as exc:
        raise ApiError(412, "precondition failed", str(exc)) from exc
    return json_response(new.model_dump(mode="json"), headers={"ETag": etag(new)})


async def delete_group(request: web.Request) -> web.Response:
    group = await changeable_group(request)
    try:
        await groups.delete_group(store_of(request), group, if_version=if_match(request),
                                  actor=group_principal(request).subject,
                                  now=now_of(request))
    except Conflict as exc:
        raise ApiError(412, "precondition failed", str(exc)) from exc
    return web.Response(status=204)


async def list_members(request: web.Request) -> web.Response:
    group = await visible_group(request)
    q = parse_query(MembersQuery, request)
    if not groups.valid(group):
        raise invalid("filters", "the group's stored filters no longer validate; fix them "
                      "with PATCH")
    rows = await store_of(request).group_page(group, scope_of(request), q.cursor, q.limit)
    cursor = rows[-1].device_id if len(rows) == q.limit else None
    return json_response({"items": [_member(r) for r in rows], "next_cursor": cursor})


def _member(r: Any) -> dict[str, Any]:
    return {k: getattr(r, k) for k in MemberItem.model_fields}


async def change_members(request: web.Request) -> web.Response:
    group = await changeable_group(request)
    principal = group_principal(request)
    try:
        body = MembersChange.model_validate(await read_json(request))
    except ValidationError as exc:
        raise from_validation(exc, "body") from exc
    try:
        new, done = await groups.change_members(
            store_of(request), group, include=body.include, exclude=body.exclude,
            remove=body.remove, if_version=if_match(request), actor=principal.subject,
            now=now_of(request))
    except groups.GroupError as exc:
        raise _group_errors(exc, "") from exc
    except Conflict as exc:
        raise ApiError(412, "precondition failed", str(exc)) from exc
    return json_response({"group": new.model_dump(mode="json"),
                          **{k: len(v) for k, v in done.items()}},
                         headers={"ETag": etag(new)})


def operations() -> list[Op]:
    gid = {"group_id": "the group's id (mRID), or the name of one of the caller's groups"}
    return [
        Op("GET", "/v1/groups", list_groups, "DER groups", response=GroupList, errors=(403,),
           description="An aggregator sees its groups, the default group 'all' first; a "
           "service token sees every group (?aggregator_id= narrows to one owner, empty: "
           "the service's own)."),
        Op("POST", "/v1/groups", create_group, "Create a group", body=GroupIn,
           response=Group, errors=(400, 403, 409), status=201, etag=True,
           description="Dynamic (filters), static (include) or both (filters plus "
           "include/exclude). Explicit ids must be DERs of the owner. Aggregator VENs are "
           "offered each of their groups as a METADATA report over OpenADR."),
        Op("GET", "/v1/groups/{group_id}", get_group, "One group", path_params=gid,
           response=Group, errors=(403, 404), etag=True),
        Op("PATCH", "/v1/groups/{group_id}", patch_group, "Change a group", path_params=gid,
           body=GroupPatch, response=Group, errors=(400, 403, 404, 409, 412), etag=True),
        Op("DELETE", "/v1/groups/{group_id}", delete_group, "Delete a group",
           path_params=gid, errors=(403, 404, 409, 412), status=204),
        Op("GET", "/v1/groups/{group_id}/members", list_members, "A group's members",
           path_params=gid, query=MembersQuery, response=MemberList, errors=(400, 403, 404),
           description="device_id order; next_cursor is the last device_id of a full page."),
        Op("POST", "/v1/groups/{group_id}/members", change_members,
           "Include, exclude or remove explicit members", path_params=gid,
           body=MembersChange, errors=(400, 403, 404, 409, 412), etag=True),
    ]
