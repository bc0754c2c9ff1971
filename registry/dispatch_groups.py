"""Which DERs a dispatch's group has: the one seam between group dispatch and the DER
groups themselves (registry.groups).

A caller names a group as DR event targets do (registry.port.groups.target_name): an
aggregator its own groups by name (``all`` included) or id, a service an aggregator's as
``<aggregator_id>/<name>``, its own by name, any by id. The dispatch stores the group's
id (``all``: the name, it is never stored) and its owner, and the re-dispatch job reads
the members again inside the owner's scope with ``registry.groups.group_members``.
"""

from __future__ import annotations

from registry.group_dispatch import Candidate
from registry.group_model import DEFAULT_GROUP, Group, GroupMember
from registry.groups import find_group, group_members
from registry.port import Scope, Store
from registry.port.groups import owner_scope, target_name


class GroupNotFound(LookupError):
    """No such group in the caller's scope (the same answer for a foreign one)."""


async def resolve_group(store: Store, scope: Scope, ref: str) -> Group:
    named = target_name(ref, scope)
    if named is None:
        raise GroupNotFound(ref)
    owner, name = named
    group = await find_group(store, scope, name, owner)
    if group is None and name != ref:  # "<owner>/<id>" is not a name: try the id
        group = await store.get_group(ref, scope)
    if group is None:
        raise GroupNotFound(ref)
    return group


def stored_ref(group: Group) -> str:
    """How the dispatch names its group for the owner later: its id (``all``: by name)."""
    return DEFAULT_GROUP if group.name == DEFAULT_GROUP else group.group_id


def candidate(row: GroupMember) -> Candidate:
    return Candidate(device_id=row.device_id, ven_id=row.ven_id, device_type=row.device_type,
                     device_class=row.device_class, max_capacity=row.max_capacity,
                     available_capacity=row.available_capacity, liveness=row.liveness,
                     dr_availability=row.dr_availability and row.availability)


async def group_candidates(store: Store, group: Group) -> list[Candidate]:
    """The group's members in device_id order, read in its owner's scope (for a caller
    who can see the group, the same as owner AND caller: its own, or a service)."""
    rows = await group_members(store, owner_scope(group), stored_ref(group))
    return [candidate(r) for r in rows]


async def current_candidates(store: Store, aggregator_id: str | None, ref: str
                             ) -> list[Candidate] | None:
    """The members now, read in the owner's scope (None: the group is gone)."""
    owner = Scope(role="aggregator", aggregator_id=aggregator_id) if aggregator_id else Scope()
    group = await find_group(store, owner, ref)
    if group is None:
        return None
    return await group_candidates(store, group)
