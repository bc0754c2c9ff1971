"""VEN reads: the poll hot path, lookups at registration, scoped lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from registry.models import Liveness, Ven
from registry.port.scope import Scope


@dataclass(slots=True)
class PollState:
    """What answering an oadrPoll needs, read in one round trip (no VEN document)."""

    ven_id: str
    registered: bool
    fingerprint: str | None
    liveness: Liveness
    pending: bool  # the outbox may hold something (True when unsure)


class VenStore(Protocol):
    async def get_ven(self, ven_id: str) -> Ven | None: ...
    async def poll_state(self, ven_id: str) -> PollState | None:
        """The hot path of every poll: registration, binding, liveness, outbox non-empty."""
        ...

    async def find_ven_by_name(self, ven_name: str) -> Ven | None: ...
    async def find_ven_by_fingerprint(self, fingerprint: str) -> Ven | None: ...
    async def list_vens(self, scope: Scope) -> list[Ven]: ...
    async def find_ven(self, ven_id: str, scope: Scope) -> Ven | None: ...
    async def vens_with_role(self, role: str) -> list[Ven]: ...
