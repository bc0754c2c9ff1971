"""Resource limits on what clients send (docs/security.md, "Resource limits").

Every bound a database or a parser would otherwise hit first, so an out-of-range value
is refused at validation (a 400 naming the field) instead of failing inside the store
(OverflowError, "too many SQL variables", RecursionError: a 500).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pydantic_core import PydanticCustomError

MAX_INT64 = 2**63 - 1  # SQLite INTEGER and BSON int64
MAX_LIST_ITEMS = 1000  # values per list filter (ven_id=..., device_class=..., kind=...)
MAX_JSON_DEPTH = 32  # nesting of a JSON request body
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)  # earliest updated_since


def bounded_list(value: Any) -> Any:
    """A list filter of at most MAX_LIST_ITEMS values (before further validation)."""
    if isinstance(value, list) and len(value) > MAX_LIST_ITEMS:
        raise PydanticCustomError(
            "too_long", "at most {max} values per list filter, got {n}",
            {"max": MAX_LIST_ITEMS, "n": len(value)},
        )
    return value


def bounded_time(value: datetime | None) -> datetime | None:
    """An instant a timestamp holds on every store; without an offset it counts as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value < MIN_TIME:
        raise PydanticCustomError("datetime_range", "must be 1970-01-01T00:00:00Z or later")
    return value


def storable_scalar(value: Any) -> bool:
    """None, a string, a 64-bit integer or a finite float: what a cursor may carry."""
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -MAX_INT64 - 1 <= value <= MAX_INT64
    return isinstance(value, float) and math.isfinite(value)


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON nests deeper than ``limit`` (iterative: no recursion)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
