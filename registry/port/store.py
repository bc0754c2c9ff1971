"""The whole port: every entity's protocol, plus the lifecycle and the one write path."""

from __future__ import annotations

from typing import Protocol

from registry.models import LogEntry
from registry.port.batch import Batch
from registry.port.delivery import DeliveryStore
from registry.port.ders import DerStore
from registry.port.dispatches import DispatchStore
from registry.port.events import EventStore
from registry.port.groups import GroupStore
from registry.port.leases import LeaseStore
from registry.port.liveness import LivenessStore
from registry.port.log import LogStore
from registry.port.nonces import NonceStore
from registry.port.ops import OpsStore
from registry.port.outbox import OutboxStore
from registry.port.overview import OverviewStore
from registry.port.reports import ReportStore
from registry.port.transfer import TransferStore
from registry.port.vens import VenStore
from registry.port.views import ViewStore


class Store(
    VenStore,
    DerStore,
    ReportStore,
    OutboxStore,
    LogStore,
    LivenessStore,
    ViewStore,
    GroupStore,
    EventStore,
    DispatchStore,
    NonceStore,
    TransferStore,
    OpsStore,
    LeaseStore,
    DeliveryStore,
    OverviewStore,
    Protocol,
):
    """Persistence port used by the service layer, the scheduler and the CLI."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def commit(self, batch: Batch) -> list[LogEntry]:
        """Apply the batch atomically; returns the log entries with their seq numbers."""
        ...
