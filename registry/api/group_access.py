"""Who may see and change which DER group (shared by the groups resources).

Prosumers have no groups (403). An aggregator token sees and manages only its own groups
(its ``all`` default group included, read-only); another tenant's group is a 404, never
a 403, so ids reveal nothing. A service token sees every group and owns the service's.
"""

from __future__ import annotations

import re

from aiohttp import web

from registry import groups
from registry.api.auth import Principal
from registry.api.common import principal_of, store_of
from registry.api.errors import ApiError
from registry.group_model import DEFAULT_GROUP, Group

ETAG = re.compile("[0-9]{1,18}")


def group_principal(request: web.Request) -> Principal:
    principal = principal_of(request)
    if principal.role == "prosumer":
        raise ApiError(403, "forbidden", "groups belong to aggregators and the service")
    return principal


async def visible_group(request: web.Request) -> Group:
    """The path's group ({group_id}: an id, or a name of the caller's own groups)."""
    principal = group_principal(request)
    ref = request.match_info["group_id"]
    group = await groups.find_group(store_of(request), principal.scope, ref)
    if group is None:
        raise ApiError(404, "not found", "no such group")
    return group


async def changeable_group(request: web.Request) -> Group:
    group = await visible_group(request)
    if group.name == DEFAULT_GROUP and group.aggregator_id is not None and \
            await store_of(request).get_group(group.group_id, principal_of(request).scope) \
            is None:
        raise ApiError(409, "conflict", "the default group 'all' cannot be changed")
    return group


def etag(group: Group) -> str:
    return f'"{group.version}"'


def if_match(request: web.Request) -> int | None:
    """The version If-Match names; None without it or for ``*``."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    tag = header.strip().removeprefix("W/").strip('"')
    if not ETAG.fullmatch(tag):
        raise ApiError(412, "precondition failed", "If-Match is not an ETag of this group")
    return int(tag)
