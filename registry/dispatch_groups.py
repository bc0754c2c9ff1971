"""Which DERs a dispatch's group has: the one seam between group dispatch and the groups
themselves (registry.groups, issue #15's other half).

``group_candidates`` answers the members as :class:`Candidate` rows, read inside the
caller's scope. It asks ``registry.groups.group_members`` when that module is there;
until then a group is a saved view (an aggregator names its own, a service
``<aggregator_id>/<name>``, as DR event targets do), read with the view's filters.
"""

from __future__ import annotations

from typing import Any

from registry.group_dispatch import Candidate
from registry.port import Scope, Store
from registry.port.events import group_view

try:  # the groups store / API (wave-groups)
    from registry.groups import group_members as _group_members  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the merge
    _group_members = None


class GroupNotFound(LookupError):
    """No such group in the caller's scope (the same answer for a foreign one)."""


def owner_of(group: str, scope: Scope) -> str | None:
    """The aggregator that owns ``group`` as ``scope`` names it (None: not nameable)."""
    ref = group_view(group, scope)
    return ref[0] if ref else None


def _candidate(row: Any) -> Candidate:
    get = row.get if isinstance(row, dict) else lambda k, d=None: getattr(row, k, d)
    return Candidate(
        device_id=get("device_id"), ven_id=get("ven_id"),
        device_type=str(get("device_type", "demand") or "demand"),
        device_class=str(get("device_class", "other") or "other"),
        max_capacity=get("max_capacity"), available_capacity=get("available_capacity"),
        liveness=str(get("liveness", "online") or "online"),
        dr_availability=bool(get("dr_availability", True)),
    )


async def group_candidates(store: Store, scope: Scope, group: str) -> list[Candidate]:
    """The group's members in device_id order; GroupNotFound when it is not visible."""
    ref = group_view(group, scope)
    if _group_members is not None:
        rows = await _group_members(store, scope, group)
        if rows is None:
            raise GroupNotFound(group)
        return sorted((_candidate(r) for r in rows), key=lambda c: c.device_id)
    if ref is None:
        raise GroupNotFound(group)
    from registry import views  # the pre-groups fallback

    owner, name = ref
    view = await views.find_view(store, owner, name)
    if view is None:
        raise GroupNotFound(group)
    briefs = await views.members(store, view)
    off: set[str] = set()  # a brief has no dr_availability: read those without it
    if "dr_availability" not in view.filters:
        flt = {**view.filters, "dr_availability": False}
        off = {b.device_id for b in await store.der_briefs(
            views.view_query(flt), views.aggregator_scope(owner))}
    return [Candidate(device_id=b.device_id, ven_id=b.ven_id, device_class=b.device_class,
                      max_capacity=b.max_capacity, available_capacity=b.available_capacity,
                      liveness=b.liveness, dr_availability=b.device_id not in off)
            for b in briefs]
