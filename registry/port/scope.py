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


def views_in_scope(scope: Scope, aggregator_id: str | None) -> tuple[bool, str | None]:
    """Which aggregator's views a caller may list: (anything visible?, aggregator filter).

    Prosumers have no views; an aggregator sees only its own, whatever it asks for.
    """
    if scope.role == "prosumer":
        return False, None
    if scope.role == "aggregator":
        return aggregator_id in (None, scope.aggregator_id), scope.aggregator_id
    return True, aggregator_id
