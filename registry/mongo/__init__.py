"""MongoDB adapter of the store port (:class:`MongoStore`), one module per entity."""

from registry.mongo.store import MongoStore

__all__ = ["MongoStore"]
