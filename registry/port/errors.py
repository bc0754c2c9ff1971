"""Store failures, the same on every adapter."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of store failures."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now; the caller should retry later."""


class Conflict(StoreError):
    """A conditional write lost (stale version, duplicate key)."""
