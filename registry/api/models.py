"""Request and response models of the side API, declared once.

Query and patch models live in :mod:`registry.discovery` (the store takes them too);
this module adds what only the HTTP layer returns. ``registry.api.openapi`` derives the
OpenAPI document from exactly these classes.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from registry.discovery import DerPatch, DiscoveryQuery, LogQuery
from registry.models import Der, Liveness, LogEntry, VenRole

__all__ = [
    "DerItem",
    "DerList",
    "DerPatch",
    "DiscoveryQuery",
    "FieldError",
    "LogList",
    "LogQuery",
    "Problem",
    "Stats",
    "VenDetail",
    "VenList",
    "VenOut",
]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DerItem(Der):
    """A DER as listed; ``distance_m`` is set for geo (near=) queries."""

    distance_m: float | None = None


class DerList(Out):
    """One page. With ``fields=`` each item holds only the requested keys."""

    items: list[DerItem]
    next_cursor: str | None = Field(None, description="pass as cursor= for the next page")
    total: int | None = Field(None, description="all matches, with total=true")


class VenOut(Out):
    ven_id: str
    ven_name: str
    role: VenRole
    account_id: str | None = None
    aggregator_id: str | None = None
    registered: bool
    liveness: Liveness
    last_seen: datetime | None = None
    offline_since: datetime | None = None
    registered_at: datetime | None = None
    poll_freq_s: float
    fingerprint: str | None = Field(None, description="the client certificate it is bound to")
    pending_outbox: int | None = Field(None, description="messages queued for it (lists)")


class VenList(Out):
    items: list[VenOut]


class VenDetail(VenOut):
    ders: list[Der] = Field(description="its DERs visible to the caller (at most 1000)")


class LogList(Out):
    items: list[LogEntry]
    last_seq: int = Field(description="pass as after= to continue")


class Stats(Out):
    total: int
    by_class: dict[str, int]
    by_type: dict[str, int]
    by_liveness: dict[str, int]


class FieldError(Out):
    field: str
    message: str


class Problem(Out):
    """RFC 7807 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] = Field(default_factory=list)
