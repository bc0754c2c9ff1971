"""MongoDB indexes (the twin of registry.sqlite.schema): declared once, created
idempotently by MongoStore.open() / init_indexes(), checked by MongoStore.check()."""

from __future__ import annotations

from typing import Any

from registry.mongo.conn import MongoConn
from registry.mongo.groups import DER_INDEXES as GROUP_DER_INDEXES
from registry.mongo.groups import INDEXES as GROUP_INDEXES

# collection -> [(name, keys, options)]; created idempotently by open()/init_indexes()
INDEXES: dict[str, list[tuple[str, list[tuple[str, Any]], dict[str, Any]]]] = {
    "vens": [
        ("ven_id_unique", [("ven_id", 1)], {"unique": True}),
        ("ven_name_unique", [("ven_name", 1)], {"unique": True}),
        ("fingerprint", [("fingerprint", 1)], {}),
        ("registration_id", [("registration_id", 1)], {}),
        ("aggregator_id", [("aggregator_id", 1)], {}),
        ("account_id", [("account_id", 1)], {}),
        ("liveness", [("liveness", 1), ("last_seen", 1)], {}),
        ("role", [("role", 1)], {}),
    ],
    "ders": [
        *GROUP_DER_INDEXES,
        ("ven_resource_unique", [("ven_id", 1), ("resource_id", 1)], {"unique": True}),
        ("device_id_unique", [("device_id", 1)], {"unique": True}),
        ("aggregator_id", [("aggregator_id", 1), ("device_class", 1)], {}),
        ("account_id", [("account_id", 1)], {}),
        ("class_capacity", [("device_class", 1), ("max_capacity", 1)], {}),
        ("liveness", [("liveness", 1)], {}),
        ("location", [("location.lat", 1), ("location.lon", 1)], {}),
        # nx-27017 accepts this but builds a plain index (and has no $geoWithin/$near):
        # geo queries there must use the lat/lon range index above; check() reports it
        ("geo_2dsphere", [("geo", "2dsphere")], {}),
        # discovery (registry.mongo.discovery): filters and sorts of the side API; an
        # ordered walk of a (filter, sort key) index stops after one page, as in SQLite
        ("updated_us", [("updated_us", 1)], {}),
        ("class_updated", [("device_class", 1), ("updated_us", 1)], {}),
        ("class_available", [("device_class", 1), ("available_capacity", 1)], {}),
        ("aggregator_capacity", [("aggregator_id", 1), ("max_capacity", 1)], {}),
        ("aggregator_name", [("aggregator_id", 1), ("device_name", 1)], {}),
        # der_stats groups on these three
        ("stats", [("device_class", 1), ("device_type", 1), ("liveness", 1)], {}),
    ],
    "report_specs": [
        ("ven_spec_unique", [("ven_id", 1), ("report_specifier_id", 1)], {"unique": True}),
    ],
    "report_requests": [
        ("ven_request_unique", [("ven_id", 1), ("report_request_id", 1)], {"unique": True}),
        ("ven_order", [("ven_id", 1), ("ord", 1)], {}),
        # the watch job (vtn.services.report_watch): fixed-width text, earliest first
        ("due", [("next_check_at", 1)], {}),
    ],
    # telemetry history (registry.response): _id = device|bucket|rID, merged with $inc
    "der_history": [
        ("device_bucket", [("device_id", 1), ("bucket", 1)], {}),
        ("bucket", [("bucket", 1)], {}),
    ],
    # a VEN's distribute marker has _id "oadrDistributeEvent/<ven_id>": one pending at most
    "outbox": [("ven_seq", [("ven_id", 1), ("seq", 1)], {"unique": True})],
    "log": [
        ("seq_unique", [("seq", 1)], {"unique": True}),
        ("ven_seq", [("ven_id", 1), ("seq", 1)], {}),
        # find_log: scoped and filtered tails of the side API's event stream
        ("aggregator_seq", [("aggregator_id", 1), ("seq", 1)], {}),
        ("account_seq", [("account_id", 1), ("seq", 1)], {}),
        ("device_seq", [("device_id", 1), ("seq", 1)], {}),
        ("kind_seq", [("kind", 1), ("seq", 1)], {}),
    ],
    # remember_nonce: one document per (ven_id, nonce); the TTL monitor deletes it once
    # expires_at (a BSON date) has passed
    "signature_nonces": [
        ("ven_nonce_unique", [("ven_id", 1), ("nonce", 1)], {"unique": True}),
        ("expires_ttl", [("expires_at", 1)], {"expireAfterSeconds": 0}),
    ],
    # DER groups (registry.mongo.groups; a store written before groups has views, moved
    # into der_groups at open)
    **GROUP_INDEXES,
    "report_subscriptions": [
        ("ven_request_unique", [("ven_id", 1), ("report_request_id", 1)], {"unique": True}),
        ("due", [("state", 1), ("next_due", 1)], {}),
    ],
    # announcements: _id = venID, nothing else to index
    # DR events (registry.mongo.events, .opts): _id = event_id; tenants = the aggregators
    # with a delivery (the aggregator scope); current_until copied onto each delivery
    "events": [
        ("aggregator_event", [("aggregator_id", 1), ("event_id", 1)], {}),
        ("tenants_event", [("tenants", 1), ("event_id", 1)], {}),
        ("event_id", [("event_id", 1)], {}),
        ("status", [("status", 1)], {}),
        ("dtstart", [("dtstart_us", 1)], {}),
    ],
    "event_deliveries": [  # _id = JSON [event_id, ven_id]
        ("event_ven_unique", [("event_id", 1), ("ven_id", 1)], {"unique": True}),
        ("ven_current", [("ven_id", 1), ("current_until", 1)], {}),
        ("aggregator_event", [("aggregator_id", 1), ("event_id", 1)], {}),
        ("account_event", [("account_id", 1), ("event_id", 1)], {}),
    ],
    "opt_schedules": [("ven_opt_unique", [("ven_id", 1), ("opt_id", 1)], {"unique": True})],
    "opt_windows": [
        ("opt_window", [("ven_id", 1), ("opt_id", 1), ("i", 1)], {}),
        ("type_end", [("opt_type", 1), ("end_us", 1)], {}),
        ("end", [("end_us", 1)], {}),
    ],
}


async def init_indexes(c: MongoConn) -> None:
    """Create every index of INDEXES (a no-op for the ones that exist)."""
    for coll, specs in INDEXES.items():
        for name, keys, opts in specs:
            await c.retry(
                lambda c_=coll, n=name, k=keys, o=opts: c.col(c_).create_index(k, name=n, **o)
            )


async def index_report(c: MongoConn) -> dict[str, list[str]]:
    missing: list[str] = []
    degraded: list[str] = []
    for coll, specs in INDEXES.items():
        cursor = await c.col(coll).list_indexes()
        have = [list(ix["key"].items()) async for ix in cursor]
        for name, keys, _ in specs:
            wanted = [(k, v) for k, v in keys]
            if wanted in have:
                continue
            # nx-27017 renames indexes and builds 2dsphere as a plain index: match by key
            if [(k, 1) for k, _v in keys] in have:
                degraded.append(f"{coll}.{name} (built as a plain index)")
            else:
                missing.append(f"{coll}.{name}")
    return {"missing_indexes": missing, "degraded_indexes": degraded}
