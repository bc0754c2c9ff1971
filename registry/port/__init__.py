"""The store port: what the VTN needs from persistence, independent of the database.

Two adapters implement it (``registry.sqlite`` and ``registry.mongo``, with the same
module per entity on both sides). One protocol per entity or concern (``registry.port.vens``,
``.ders``, ``.reports``, ``.outbox``, ``.log``, ``.liveness``, ``.views``, ``.groups``, ``.nonces``,
``.transfer``, ``.events``); :class:`Store` is their union plus ``open``/``close``/``commit``.

Every read that can reveal DERs takes a :class:`Scope`, so tenant filtering happens
inside the query, never after it. Writes go through :meth:`Store.commit` with a
:class:`Batch`, which the adapter applies atomically: the service layer computes a whole
reaction to a message first, then persists it in one step (nothing half-written).
"""

from __future__ import annotations

from registry.port.batch import ANY, Batch, DerStatusUpdate, TelemetryBucket
from registry.port.ders import DerQuery, DerRef, DerStore
from registry.port.errors import Conflict, StoreError, StoreUnavailable
from registry.port.events import EventQuery, EventStore, OptAnswer
from registry.port.groups import (
    GroupStore,
    NameTaken,
    groups_in_scope,
    may_see,
    owner_scope,
)
from registry.port.liveness import LivenessStore, liveness_entry
from registry.port.log import LogStore
from registry.port.nonces import NonceStore
from registry.port.outbox import OutboxStore
from registry.port.reports import ReportStore
from registry.port.scope import SERVICE, Scope
from registry.port.store import Store
from registry.port.transfer import TransferStore
from registry.port.vens import PollState, VenStore
from registry.port.views import ViewStore

__all__ = [
    "ANY",
    "SERVICE",
    "Batch",
    "TelemetryBucket",
    "Conflict",
    "DerQuery",
    "DerRef",
    "DerStatusUpdate",
    "DerStore",
    "EventQuery",
    "EventStore",
    "GroupStore",
    "NameTaken",
    "LivenessStore",
    "LogStore",
    "NonceStore",
    "OptAnswer",
    "OutboxStore",
    "PollState",
    "ReportStore",
    "Scope",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TransferStore",
    "VenStore",
    "ViewStore",
    "groups_in_scope",
    "liveness_entry",
    "may_see",
    "owner_scope",
]
