"""Views: what DER groups were called before issue #15, kept as a deprecated face.

A view is an aggregator's group (``registry.groups``); ``all`` is its default group. The
OpenADR side offers every group of an aggregator (dynamic or static) through
:func:`views_of` and :func:`offered_members`. The old ``/api/v1/views`` API and ``vtn
views`` still work on the view-shaped groups (filters, no explicit members) by name; new
clients use ``/api/v1/groups`` (docs/der-groups.md).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from registry import groups
from registry.discovery import DerBrief
from registry.group_model import DEFAULT_GROUP, Group, default_group
from registry.groups import GroupError as ViewError
from registry.groups import ReservedName
from registry.models import View
from registry.port import Conflict, Scope, Store, owner_scope

logger = logging.getLogger(__name__)
__all__ = ["ReservedName", "ViewError"]


def aggregator_scope(aggregator_id: str) -> Scope:
    return Scope(role="aggregator", aggregator_id=aggregator_id)


def default_view(aggregator_id: str) -> Group:
    return default_group(aggregator_id)


def as_view(group: Group) -> View:
    """The old API's shape of an aggregator's group."""
    assert group.aggregator_id is not None
    return View(aggregator_id=group.aggregator_id, name=group.name, filters=group.filters or {},
                description=group.description, created_at=group.created_at,
                updated_at=group.updated_at)


def view_shaped(group: Group) -> bool:
    """A group the old views API can show: an aggregator's, filters only."""
    return group.aggregator_id is not None and group.filters is not None \
        and not group.includes and not group.excludes


async def views_of(store: Store, aggregator_id: str) -> list[Group]:
    """The aggregator's groups as offered over OpenADR: ``all`` first, then by name."""
    saved = await store.list_groups(aggregator_scope(aggregator_id), aggregator_id)
    return [default_group(aggregator_id), *(g for g in saved if g.name != DEFAULT_GROUP)]


async def list_views(store: Store, scope: Scope, aggregator_id: str | None = None
                     ) -> list[View]:
    """The view-shaped groups visible in the scope (the old API's listing)."""
    found = await store.list_groups(scope, aggregator_id)
    return [as_view(g) for g in found if view_shaped(g)]


async def find_view(store: Store, aggregator_id: str, name: str) -> Group | None:
    if name == DEFAULT_GROUP:
        return default_group(aggregator_id)
    return await store.group_named(aggregator_id, name, aggregator_scope(aggregator_id))


async def members(store: Store, group: Group) -> list[DerBrief]:
    """Every member (device_id order), read inside the owner's scope."""
    return await store.group_briefs(group, owner_scope(group))


async def offered_members(store: Store, group: Group) -> list[DerBrief] | None:
    """:func:`members`, or None for a stored group whose filters no longer validate
    (saved before a limit existed): the OpenADR side skips it with a warning instead of
    failing every offer, re-registration and refresh of its aggregator."""
    if not groups.valid(group):
        logger.warning("group %s/%s skipped, its filters are invalid",
                       group.aggregator_id, group.name)
        return None
    return await members(store, group)


async def save_view(
    store: Store, aggregator_id: str, name: str, filters: dict[str, Any],
    description: str | None, actor: str, now: datetime, *, replace: bool = True,
) -> tuple[View, bool]:
    """Create (or replace the filters and description of) the aggregator's group of that
    name; returns (view, created). FileExistsError when ``replace`` is false and it
    exists; GroupError for bad filters; ReservedName for ``all``."""
    if name == DEFAULT_GROUP:
        raise ReservedName(f"{DEFAULT_GROUP!r} is every aggregator's default view")
    old = await find_view(store, aggregator_id, name)
    if old is not None and not replace:
        raise FileExistsError(f"view {name!r} exists")
    try:
        if old is None:
            group = await groups.create_group(
                store, aggregator_id, name, description=description, filters=filters,
                actor=actor, now=now)
        else:
            group = await groups.update_group(
                store, old, {"filters": filters, "description": description},
                if_version=None, actor=actor, now=now)
    except Conflict as exc:
        raise FileExistsError(f"view {name!r} was saved meanwhile") from exc
    return as_view(group), old is None


async def delete_view(store: Store, aggregator_id: str, name: str, actor: str, now: datetime
                      ) -> bool:
    group = await find_view(store, aggregator_id, name)
    if group is None or name == DEFAULT_GROUP:
        return False
    await groups.delete_group(store, group, if_version=None, actor=actor, now=now)
    return True
