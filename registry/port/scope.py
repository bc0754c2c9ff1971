"""Who is asking: the tenant scope every read that can reveal DERs or VENs applies."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scope:
    """Who is asking. Applied inside every store query that can reveal DERs or VENs."""

    role: str = "service"  # service | aggregator | prosumer
    aggregator_id: str | None = None
    account_id: str | None = None

    @property
    def is_service(self) -> bool:
        return self.role == "service"


SERVICE = Scope()
