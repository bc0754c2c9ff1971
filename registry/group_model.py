"""DER groups (IEC 61968-5 EndDeviceGroup): the stored record and a member row.

A group is owned by one tenant: an aggregator (``aggregator_id``) or the service itself
(``aggregator_id`` None). Its members are the DERs its discovery ``filters`` match
(dynamic; None means no filter, a static group) plus its explicit includes, minus its
explicit excludes (static members live beside the record, see the store port), always
read inside the owner's scope: a group never holds another tenant's DERs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from registry.models import Model, new_id, utcnow

GROUP_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
GROUP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
DEFAULT_GROUP = "all"  # every aggregator's implicit group: all of its DERs (never stored)
MAX_STATIC_MEMBERS = 100_000  # explicit includes + excludes of one group
_MIGRATED = uuid.UUID("6f1c2a52-3c4e-4d59-9d1e-0b8f5a7e2c11")
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)  # the default group never changes


class MemberKind(StrEnum):
    INCLUDE = "include"
    EXCLUDE = "exclude"


class Group(Model):
    """One DER group as stored. ``version`` grows by one on every change (the ETag)."""

    group_id: str = Field(default_factory=new_id, pattern=GROUP_ID_PATTERN)  # the mRID
    aggregator_id: str | None = Field(None, min_length=1)  # owner; None: the service
    name: str = Field(pattern=GROUP_NAME_PATTERN)
    description: str | None = Field(None, max_length=500)
    # discovery filter fields (registry.groups.normalise_filters); None: static only
    filters: dict[str, Any] | None = None
    includes: int = Field(0, ge=0)  # how many device ids are explicitly included
    excludes: int = Field(0, ge=0)  # ... and excluded
    version: int = Field(1, ge=1)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def owner(self) -> str:
        """The owner key of the (owner, name) uniqueness: '' for the service."""
        return self.aggregator_id or ""


class StaticMember(Model):
    """One explicit include / exclude (a record of registry.transfer)."""

    group_id: str
    device_id: str
    kind: MemberKind


def migrated_group_id(aggregator_id: str, name: str) -> str:
    """The id a view saved before groups existed gets: the same on every process."""
    return str(uuid.uuid5(_MIGRATED, f"{aggregator_id}/{name}"))


def group_of_view(view: dict[str, Any]) -> Group:
    """The group a view saved before groups existed becomes (as stored or dumped)."""
    return Group(
        group_id=migrated_group_id(view["aggregator_id"], view["name"]),
        aggregator_id=view["aggregator_id"], name=view["name"],
        description=view.get("description"), filters=view.get("filters") or {},
        created_at=view["created_at"], updated_at=view["updated_at"],
    )


def default_group(aggregator_id: str) -> Group:
    """Every aggregator's implicit group ``all``: all of its DERs (never stored)."""
    return Group(
        group_id=migrated_group_id(aggregator_id, DEFAULT_GROUP), aggregator_id=aggregator_id,
        name=DEFAULT_GROUP, description="all my DERs", filters={}, created_at=_EPOCH,
        updated_at=_EPOCH,
    )


@dataclass(slots=True)
class GroupMember:
    """The member fields roll-up, forecast, offers and dispatch need (no document)."""

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


@dataclass(slots=True)
class TallyRow:
    """Members of one (device_type, device_class, liveness, DR-available) combination:
    how many, Σ capacities (W), how many are in an active event, how many opted out."""

    device_type: str
    device_class: str
    liveness: str
    dr_available: bool
    members: int
    max_capacity_w: float
    available_capacity_w: float
    in_event: int
    opted_out: int


def tally(members: list[GroupMember], in_event: set[str], opted_vens: set[str],
          opted_devices: set[str]) -> list[TallyRow]:
    """:class:`TallyRow` s of member rows (an adapter without a GROUP BY uses this)."""
    rows: dict[tuple[str, str, str, bool], TallyRow] = {}
    for m in members:
        key = (m.device_type, m.device_class, m.liveness, m.availability and m.dr_availability)
        row = rows.get(key)
        if row is None:
            row = rows[key] = TallyRow(*key, 0, 0.0, 0.0, 0, 0)
        row.members += 1
        row.max_capacity_w += m.max_capacity or 0.0
        row.available_capacity_w += m.available_capacity or 0.0
        row.in_event += m.device_id in in_event
        row.opted_out += m.ven_id in opted_vens or m.device_id in opted_devices
    return list(rows.values())
