"""DER groups: the records, their static members and their member rows, scope inside."""

from __future__ import annotations

from typing import Protocol

from registry.discovery import DerBrief
from registry.group_model import Group, GroupMember, MemberKind, TallyRow
from registry.port.errors import Conflict
from registry.port.scope import Scope


class NameTaken(Conflict):
    """The owner has another group of that name (the rest of the commit is not applied)."""


def groups_in_scope(scope: Scope, aggregator_id: str | None) -> tuple[bool, str | None]:
    """Which owner's groups a caller may list: (anything visible?, owner filter).

    Prosumers have no groups; an aggregator sees only its own, whatever it asks for; a
    service sees every group (or one aggregator's, or with ``""`` the service's own).
    """
    if scope.role == "prosumer":
        return False, None
    if scope.role == "aggregator":
        if scope.aggregator_id is None:
            return False, None
        return aggregator_id in (None, scope.aggregator_id), scope.aggregator_id
    return True, aggregator_id


def may_see(scope: Scope, group: Group) -> bool:
    """A service sees every group, an aggregator its own, a prosumer none."""
    if scope.is_service:
        return True
    return scope.role == "aggregator" and scope.aggregator_id is not None \
        and group.aggregator_id == scope.aggregator_id


def owner_scope(group: Group) -> Scope:
    """The scope a group's members are always read in: its owner's."""
    if group.aggregator_id is None:
        return Scope()
    return Scope(role="aggregator", aggregator_id=group.aggregator_id)


def target_name(name: str, scope: Scope) -> tuple[str | None, str] | None:
    """(owner, group name) an event's group target names in the scope, or None.

    An aggregator names its own groups (``all`` included); a service names an
    aggregator's group as ``<aggregator_id>/<name>`` and its own by bare name; a prosumer
    has no groups. Adapters also accept a group id visible in the scope.
    """
    if scope.role == "aggregator" and scope.aggregator_id is not None:
        return scope.aggregator_id, name
    if scope.is_service:
        if "/" in name:
            owner, _, group = name.partition("/")
            return (owner, group) if owner and group else None
        return None, name
    return None


class GroupStore(Protocol):
    async def list_groups(self, scope: Scope, aggregator_id: str | None = None) -> list[Group]:
        """Groups visible in the scope, by (owner, name); ``aggregator_id`` narrows to one
        owner (``""``: the service's own groups). An aggregator sees only its own."""
        ...

    async def get_group(self, group_id: str, scope: Scope) -> Group | None:
        """The group if it exists and the scope may see it (else None, never revealing)."""
        ...

    async def group_named(self, aggregator_id: str | None, name: str, scope: Scope
                          ) -> Group | None:
        """The owner's group of that name (None for the service), if the scope sees it."""
        ...

    async def group_static(self, group_id: str, kind: MemberKind, after: str | None = None,
                           limit: int = 1000) -> list[str]:
        """Device ids explicitly included / excluded, device_id order after ``after``.
        Ids only; read member rows with :meth:`group_page` to see what is visible."""
        ...

    async def group_page(self, group: Group, scope: Scope, after: str | None = None,
                         limit: int = 1000) -> list[GroupMember]:
        """One page of the group's members in device_id order after ``after``:
        (filter matches or includes) minus excludes, inside the owner's scope AND the
        caller's. ``filters`` must be valid (registry.groups checks before calling)."""
        ...

    async def group_tally(self, group: Group, scope: Scope, in_event: set[str],
                          opted_vens: set[str], opted_devices: set[str]) -> list[TallyRow]:
        """The members (as :meth:`group_page` reads them) counted per (device_type,
        device_class, liveness, DR-available) in one pass inside the store: how many,
        Σ max / available capacity, how many of ``in_event`` (device ids), how many of a
        VEN in ``opted_vens`` or in ``opted_devices``. Row order is unspecified."""
        ...

    async def group_briefs(self, group: Group, scope: Scope) -> list[DerBrief]:
        """Every member as a :class:`DerBrief` (with its status), device_id order, under
        the same rules as :meth:`group_page` (what a group offer over OpenADR needs)."""
        ...

    async def visible_device_ids(self, device_ids: list[str], scope: Scope) -> set[str]:
        """Those of the ids that are DERs the scope may see."""
        ...
