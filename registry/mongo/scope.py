"""The tenant scope as a MongoDB filter (the twin of registry.sqlite.scope)."""

from __future__ import annotations

from typing import Any

from registry.port import Scope

Doc = dict[str, Any]

# matches no document: an incomplete scope must see nothing
NOTHING: Doc = {"_id": {"$in": []}}


def scope_filter(scope: Scope) -> Doc:
    """The tenant restriction of a scope (same rules as the SQLite ``scope_where``)."""
    if scope.role == "service":
        return {}
    if scope.role == "aggregator" and scope.aggregator_id is not None:
        return {"aggregator_id": scope.aggregator_id}
    if scope.role == "prosumer" and scope.account_id is not None:
        return {"account_id": scope.account_id}
    return dict(NOTHING)


def and_(parts: list[Doc]) -> Doc:
    parts = [p for p in parts if p]
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}
