"""DER groups (IEC 61968-5 EndDeviceGroup): maintenance and member resolution.

A group belongs to one tenant (an aggregator, or the service when ``aggregator_id`` is
None). Members = DERs matching its discovery ``filters`` (dynamic; None: none) plus its
explicit includes, minus its explicit excludes, always read by the store inside the
owner's scope AND the caller's, so no filter or id list can reach another tenant's DERs.
Every change is one :class:`Batch` (the record at version+1, its static members, one log
entry) conditional on the version read, so concurrent edits fail with Conflict (412 on
the API, like DER patches). Roll-up and forecast: ``registry.group_status``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from registry.discovery import DiscoveryQuery
from registry.group_model import (
    DEFAULT_GROUP,
    MAX_STATIC_MEMBERS,
    Group,
    GroupMember,
    MemberKind,
    default_group,
)
from registry.models import LogEntry
from registry.port import Batch, Scope, Store, owner_scope

NOT_FILTERS = ("sort", "fields", "limit", "cursor", "total")
GROUP_FILTERS = tuple(f for f in DiscoveryQuery.model_fields if f not in NOT_FILTERS)
PAGE = 5000
LOGGED_IDS = 100  # device ids named in one group.members log entry (the counts are exact)


class GroupError(ValueError):
    """Input that is not a valid group (bad filter, unknown device, too many members)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class ReservedName(ValueError):
    """``all`` is every aggregator's implicit group."""


def group_query(filters: dict[str, Any]) -> DiscoveryQuery:
    """The discovery query of a group's filters (validated like GET /v1/ders)."""
    unknown = sorted(set(filters) - set(GROUP_FILTERS))
    if unknown:
        raise GroupError([{"field": k, "message": "not a group filter"} for k in unknown])
    try:
        return DiscoveryQuery.model_validate(filters)
    except ValidationError as exc:
        raise GroupError([
            {"field": ".".join(str(p) for p in e["loc"]) or "filters", "message": e["msg"]}
            for e in exc.errors()
        ]) from exc


def normalise_filters(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validated filters in canonical JSON form (what is stored and shown)."""
    if filters is None:
        return None
    query = group_query(filters)
    return query.model_dump(mode="json", include=set(GROUP_FILTERS), exclude_none=True)


def valid(group: Group) -> bool:
    """False for a stored group whose filters no longer validate (saved before a limit
    existed): it has no members until its owner fixes or deletes it."""
    try:
        normalise_filters(group.filters)
    except GroupError:
        return False
    return True


async def find_group(store: Store, scope: Scope, ref: str, owner: str | None = None
                     ) -> Group | None:
    """A group by id, or by name within ``owner`` (an aggregator id; None: the caller's
    own tenant, the service for a service token). ``all`` is an aggregator's default."""
    if scope.role == "aggregator":
        owner = scope.aggregator_id
    if owner is not None and ref == DEFAULT_GROUP:
        return default_group(owner)
    by_name = await store.group_named(owner, ref, scope)
    return by_name or await store.get_group(ref, scope)


async def iter_members(store: Store, scope: Scope, group: Group, page: int = PAGE
                       ) -> AsyncIterator[list[GroupMember]]:
    """The group's members page by page (device_id order); nothing for an invalid group."""
    if not valid(group):
        return
    after = None
    while True:
        rows = await store.group_page(group, scope, after, page)
        if rows:
            yield rows
        if len(rows) < page:
            return
        after = rows[-1].device_id


async def group_members(store: Store, scope: Scope, group_id: str) -> list[GroupMember]:
    """Every member of the group ``group_id`` as the caller in ``scope`` may see it.

    Contract (used by group dispatch): returns :class:`GroupMember` rows (device_id,
    ven_id, resource_id, aggregator_id, device_type, device_class, max_capacity and
    available_capacity in W or None, liveness, availability, dr_availability) in
    device_id order, read page by page inside the owner's scope AND ``scope``; ``[]``
    when the group does not exist, is not visible in ``scope`` or its stored filters no
    longer validate. ``group_id`` may also be a name as :func:`find_group` takes it.
    """
    group = await find_group(store, scope, group_id)
    if group is None:
        return []
    out: list[GroupMember] = []
    async for rows in iter_members(store, scope, group):
        out.extend(rows)
    return out


def _entry(kind: str, group: Group, actor: str, now: datetime, **data: Any) -> LogEntry:
    return LogEntry(kind=kind, at=now, actor=actor, aggregator_id=group.aggregator_id,
                    data={"group_id": group.group_id, "name": group.name, **data})


async def _check_devices(store: Store, group: Group, ids: list[str], field: str) -> None:
    if not ids:
        return
    seen = await store.visible_device_ids(ids, owner_scope(group))
    unknown = [d for d in ids if d not in seen]
    if unknown:  # another tenant's DER looks exactly like one that does not exist
        raise GroupError([{"field": field, "message": f"no such DER of the owner: {d}"}
                          for d in unknown[:20]])


def _dedupe(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


async def create_group(
    store: Store, aggregator_id: str | None, name: str, *, description: str | None = None,
    filters: dict[str, Any] | None = None, include: list[str] | None = None,
    exclude: list[str] | None = None, actor: str, now: datetime,
) -> Group:
    """A new group (Conflict if the owner has one of that name). Raises GroupError for
    bad filters or device ids the owner cannot see, ReservedName for ``all``."""
    if name == DEFAULT_GROUP:
        raise ReservedName(f"{DEFAULT_GROUP!r} is every aggregator's default group")
    include, exclude = _dedupe(include or []), _dedupe(exclude or [])
    both = set(include) & set(exclude)
    if both:
        raise GroupError([{"field": "exclude", "message": f"also included: {sorted(both)[0]}"}])
    if len(include) + len(exclude) > MAX_STATIC_MEMBERS:
        raise GroupError([{"field": "include", "message":
                           f"at most {MAX_STATIC_MEMBERS} explicit members"}])
    group = Group(aggregator_id=aggregator_id, name=name, description=description,
                  filters=normalise_filters(filters), includes=len(include),
                  excludes=len(exclude), created_at=now, updated_at=now)
    await _check_devices(store, group, include, "include")
    await _check_devices(store, group, exclude, "exclude")
    members = [(group.group_id, d, MemberKind.INCLUDE) for d in include]
    members += [(group.group_id, d, MemberKind.EXCLUDE) for d in exclude]
    entry = _entry("group.created", group, actor, now, filters=group.filters,
                   includes=len(include), excludes=len(exclude))
    await store.commit(Batch(groups=[(group, None)], group_members=members, log=[entry]))
    return group


async def update_group(store: Store, group: Group, changes: dict[str, Any], *,
                       if_version: int | None, actor: str, now: datetime) -> Group:
    """Change name, description and/or filters (``filters`` None: static only). The
    version read (or ``if_version``) must still be the stored one, else Conflict."""
    if changes.get("name") == DEFAULT_GROUP:
        raise ReservedName(f"{DEFAULT_GROUP!r} is every aggregator's default group")
    if "filters" in changes:
        changes = {**changes, "filters": normalise_filters(changes["filters"])}
    expected = group.version if if_version is None else if_version
    new = group.model_copy(update={**changes, "version": expected + 1, "updated_at": now})
    diff = {k: {"from": getattr(group, k), "to": v} for k, v in changes.items()
            if getattr(group, k) != v}
    entry = _entry("group.changed", new, actor, now, changes=diff)
    await store.commit(Batch(groups=[(new, expected)], log=[entry]))
    return new


async def delete_group(store: Store, group: Group, *, if_version: int | None, actor: str,
                       now: datetime) -> None:
    entry = _entry("group.deleted", group, actor, now)
    await store.commit(Batch(delete_groups=[(group.group_id, if_version)], log=[entry]))


async def _static(store: Store, group_id: str, kind: MemberKind) -> set[str]:
    out: set[str] = set()
    after = None
    while True:
        ids = await store.group_static(group_id, kind, after, 10_000)
        out.update(ids)
        if len(ids) < 10_000:
            return out
        after = ids[-1]


async def change_members(
    store: Store, group: Group, *, include: Sequence[str] = (), exclude: Sequence[str] = (),
    remove: Sequence[str] = (), if_version: int | None, actor: str, now: datetime,
) -> tuple[Group, dict[str, list[str]]]:
    """Explicitly include, exclude, or drop (neither) device ids: one commit, one
    ``group.members`` log entry naming what really changed, the version +1."""
    add_in, add_out, drop = _dedupe(list(include)), _dedupe(list(exclude)), \
        _dedupe(list(remove))
    return await _change(store, group, add_in, add_out, drop, if_version, actor, now)


async def _change(store: Store, group: Group, include: list[str], exclude: list[str],
                  remove: list[str], if_version: int | None, actor: str, now: datetime,
                  ) -> tuple[Group, dict[str, list[str]]]:
    overlap = (set(include) & set(exclude)) | (set(remove) & (set(include) | set(exclude)))
    if overlap:
        raise GroupError([{"field": "device_ids",
                           "message": f"named twice: {sorted(overlap)[0]}"}])
    await _check_devices(store, group, include, "include")
    await _check_devices(store, group, exclude, "exclude")
    has_in = await _static(store, group.group_id, MemberKind.INCLUDE)
    has_out = await _static(store, group.group_id, MemberKind.EXCLUDE)
    done = {"included": [d for d in include if d not in has_in],
            "excluded": [d for d in exclude if d not in has_out],
            "removed": [d for d in remove if d in has_in or d in has_out]}
    new_in = (has_in | set(done["included"])) - set(exclude) - set(remove)
    new_out = (has_out | set(done["excluded"])) - set(include) - set(remove)
    if len(new_in) + len(new_out) > MAX_STATIC_MEMBERS:
        raise GroupError([{"field": "include", "message":
                           f"at most {MAX_STATIC_MEMBERS} explicit members"}])
    if not any(done.values()):
        return group, done
    expected = group.version if if_version is None else if_version
    new = group.model_copy(update={"includes": len(new_in), "excludes": len(new_out),
                                   "version": expected + 1, "updated_at": now})
    rows = [(group.group_id, d, MemberKind.INCLUDE) for d in done["included"]]
    rows += [(group.group_id, d, MemberKind.EXCLUDE) for d in done["excluded"]]
    rows += [(group.group_id, d, None) for d in done["removed"]]
    entry = _entry("group.members", new, actor, now,
                   **{k: len(v) for k, v in done.items()},
                   device_ids={k: v[:LOGGED_IDS] for k, v in done.items() if v})
    await store.commit(Batch(groups=[(new, expected)], group_members=rows, log=[entry]))
    return new, done
