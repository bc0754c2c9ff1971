"""The tenant scope as a SQL condition (the twin of registry.mongo.scope)."""

from __future__ import annotations

from typing import Any

from registry.port import Scope


def scope_where(scope: Scope) -> tuple[str, tuple[Any, ...]]:
    """Tenant filter on a table with aggregator_id / account_id columns."""
    if scope.role == "service":
        return "1=1", ()
    if scope.role == "aggregator" and scope.aggregator_id is not None:
        return "aggregator_id=?", (scope.aggregator_id,)
    if scope.role == "prosumer" and scope.account_id is not None:
        return "account_id=?", (scope.account_id,)
    return "0=1", ()  # an incomplete scope sees nothing
