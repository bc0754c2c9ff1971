"""What an operator (``vtn status``, ``/metrics``, ``vtn backup``) asks of a store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class FleetSummary:
    """The operator's first question: how many VENs and DERs, in which state, how much
    capacity (W, as everywhere in the registry), how much is waiting to be delivered."""

    vens_by_liveness: dict[str, int] = field(default_factory=dict)
    vens_registered: int = 0
    ders_by_liveness: dict[str, int] = field(default_factory=dict)
    # device class -> [DERs, Σ max_capacity W, Σ available_capacity W]
    capacity_by_class: dict[str, list[float]] = field(default_factory=dict)
    outbox_pending: int = 0
    size_bytes: int | None = None  # of the database (None: the server does not say)
    schema_version: int = 0


class OpsStore(Protocol):
    async def fleet_summary(self) -> FleetSummary:
        """Counts over the whole store (service scope: operators see everything)."""
        ...

    async def schema_version(self) -> int:
        """The applied migration number (registry.sqlite/mongo.migrations)."""
        ...
