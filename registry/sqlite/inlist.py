"""``column IN (...)`` for lists of any length.

Up to ``INLINE_MAX`` values are inlined as parameters (the plan SQLite knows best); a
longer list is passed as one JSON array parameter read with ``json_each``, so no list
can exceed SQLite's limit on variables per statement ("too many SQL variables").
"""

from __future__ import annotations

import json
from typing import Any

INLINE_MAX = 64


def in_list(column: str, values: list[Any]) -> tuple[str, list[Any]]:
    """The clause and its parameters; ``column`` must be a whitelisted name."""
    if len(values) <= INLINE_MAX:
        return f"{column} IN ({','.join('?' * len(values))})", list(values)
    return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(values)]
