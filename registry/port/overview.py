"""Fleet aggregates for the operator dashboard: one read per screen, scoped like the rest.

The overview is what an operator checks first (VENs and DERs by liveness, capacity by
class and device type, recent registrations and refusals); ``outbox_pending`` answers
"what is waiting for this VEN" for a page of VENs in one query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from registry.discovery import DiscoveryQuery, LogQuery
from registry.models import LogEntry
from registry.port.scope import Scope


@dataclass(slots=True)
class CapacitySum:
    """DERs in a bucket and their summed capacities (W; DERs without one add 0)."""

    ders: int = 0
    max_w: float = 0.0
    available_w: float = 0.0


@dataclass(slots=True)
class FleetOverview:
    vens_by_liveness: dict[str, int] = field(default_factory=dict)
    ders_by_liveness: dict[str, int] = field(default_factory=dict)
    by_class: dict[str, CapacitySum] = field(default_factory=dict)
    by_type: dict[str, CapacitySum] = field(default_factory=dict)
    # log entries of the asked kinds since the asked time: kind -> count
    log_counts: dict[str, int] = field(default_factory=dict)


def add_group(ov: FleetOverview, device_class: str, device_type: str, liveness: str, n: int,
              max_w: float | None, available_w: float | None) -> None:
    """Fold one (class, type, liveness) group row into the overview (both adapters)."""
    ov.ders_by_liveness[liveness] = ov.ders_by_liveness.get(liveness, 0) + n
    for bucket, key in ((ov.by_class, device_class), (ov.by_type, device_type)):
        s = bucket.setdefault(key, CapacitySum())
        s.ders += n
        s.max_w += float(max_w or 0.0)
        s.available_w += float(available_w or 0.0)


# device_id, lat, lon, liveness, device_class of one located DER (the map's rows)
DerPoint = tuple[str, float, float, str, str]


class OverviewStore(Protocol):
    async def fleet_overview(self, scope: Scope, since: datetime, kinds: list[str]
                             ) -> FleetOverview:
        """VEN and DER aggregates in the scope, and how many log entries of ``kinds``
        (in the scope) were written at or after ``since``."""
        ...

    async def der_points(self, query: DiscoveryQuery, scope: Scope) -> list[DerPoint]:
        """Every DER with a location matching the filters of ``query`` in the scope, in
        no particular order (sort, paging and projection are ignored): a whole-fleet
        map in one read of a few columns."""
        ...

    async def recent_log(self, query: LogQuery, scope: Scope) -> list[LogEntry]:
        """The newest ``query.limit`` entries matching its filters (kind, ven_id,
        device_id) in the scope, newest first (``query.after`` is ignored): what a
        detail panel shows, where find_log reads forward from a seq."""
        ...

    async def outbox_pending(self, ven_ids: list[str], scope: Scope) -> dict[str, int]:
        """Queued outbox messages per VEN, for those of ``ven_ids`` visible in the scope
        (VENs with none are absent)."""
        ...
