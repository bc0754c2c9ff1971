"""Compile :class:`DerQuery` and :class:`Scope` into MongoDB filters.

Mirrors ``_scope_where`` and ``SqliteStore.list_ders`` exactly, so both adapters answer
the same question the same way: equality on ids, ``$in`` on the enumerations (an empty
list means "no filter", as in SQL), keyset pagination on ``device_id`` and
``ORDER BY device_id``. Only operators that nx-27017 and real MongoDB both implement
are used (no ``$expr``, no ``$exists``: nx-27017 treats ``null`` as missing there).
"""

from __future__ import annotations

from typing import Any

from registry.port import DerQuery, Scope

# matches no document: an incomplete scope must see nothing
NOTHING: dict[str, Any] = {"_id": {"$in": []}}

DER_SORT: list[tuple[str, int]] = [("device_id", 1)]


def scope_filter(scope: Scope) -> dict[str, Any]:
    """The tenant restriction of a scope (same rules as the SQLite ``_scope_where``)."""
    if scope.role == "service":
        return {}
    if scope.role == "aggregator" and scope.aggregator_id is not None:
        return {"aggregator_id": scope.aggregator_id}
    if scope.role == "prosumer" and scope.account_id is not None:
        return {"account_id": scope.account_id}
    return dict(NOTHING)


def _merge(base: dict[str, Any], field: str, condition: Any) -> dict[str, Any]:
    """AND one more condition onto a filter without overwriting an existing one."""
    if field not in base:
        base[field] = condition
    elif base[field] != condition:
        base.setdefault("$and", []).append({field: condition})
    return base


def der_filter(query: DerQuery, scope: Scope) -> dict[str, Any]:
    """Filter for ``list_ders``: scope first, then the query's own conditions."""
    flt = scope_filter(scope)
    for field, value in (
        ("ven_id", query.ven_id),
        ("aggregator_id", query.aggregator_id),
        ("account_id", query.account_id),
    ):
        if value is not None:
            _merge(flt, field, value)
    for field, values in (
        ("device_class", query.device_class),
        ("device_type", query.device_type),
        ("liveness", query.liveness),
    ):
        if values:
            _merge(flt, field, {"$in": [str(v) for v in values]})
    if query.after_device_id is not None:
        _merge(flt, "device_id", {"$gt": query.after_device_id})
    return flt


def der_limit(query: DerQuery) -> int | None:
    """SQL LIMIT semantics: 0 means no rows, a negative limit means no limit.

    Returns None for "return nothing" (Mongo's ``limit(0)`` would mean unlimited).
    """
    if query.limit == 0:
        return None
    return max(query.limit, 0)
