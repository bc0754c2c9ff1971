"""SQLite adapter of the store port (:class:`SqliteStore`), one module per entity."""

from registry.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
