"""Builders and query helpers shared by the store contract tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

from registry.discovery import DiscoveryQuery, Hit
from registry.models import (
    Der,
    DeviceClass,
    DeviceType,
    Liveness,
    Location,
    OutboxMessage,
    ReportRequestRecord,
    ReportSpec,
    ReportSubscription,
    Ven,
)
from registry.port import SERVICE, Batch, Scope, Store

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


Opener = Callable[[], Awaitable[Store]]


def ven(name: str = "osb-1", **kw: object) -> Ven:
    return Ven(ven_name=name, registered=True, **kw)  # type: ignore[arg-type]


def der(ven_id: str, resource: str, **kw: object) -> Der:
    fields: dict[str, object] = {"device_name": resource, "created_at": T0, "updated_at": T0}
    fields.update(kw)
    return Der(ven_id=ven_id, resource_id=resource, **fields)  # type: ignore[arg-type]


async def seed(store: Store, *vens: Ven, ders: list[Der] | None = None) -> None:
    await store.commit(Batch(vens=list(vens), ders=ders or []))


def spec(ven_id: str, sid: str) -> ReportSpec:
    return ReportSpec(ven_id=ven_id, report_specifier_id=sid, report_name="METADATA_TELEMETRY",
                      r_ids={"r.1": "hp"}, registered_at=T0)


def request(ven_id: str, rid: str) -> ReportRequestRecord:
    return ReportRequestRecord(ven_id=ven_id, report_request_id=rid, report_specifier_id="s1",
                               r_ids=["r.1"], granularity_s=60, report_back_duration_s=60,
                               created_at=T0)


def msg(ven_id: str, i: int) -> OutboxMessage:
    return OutboxMessage(ven_id=ven_id, kind="oadrRegisterReport", body=f"<m{i}/>", created_at=T0)


async def snapshot(store: Store, ven_id: str, device_id: str) -> tuple[object, ...]:
    return (
        await store.get_ven(ven_id),
        await store.get_der(device_id, SERVICE),
        await store.report_specs_of_ven(ven_id),
        await store.report_requests_of_ven(ven_id),
        await store.pending_count(ven_id),
        await store.read_log(),
    )


def fleet() -> tuple[list[Ven], list[Der]]:
    """Two tenants, every nullable sort key null somewhere, names that test LIKE."""
    v1 = ven("osb-1", aggregator_id="agg1", account_id="acc1")
    v2 = ven("osb-2", aggregator_id="agg2", account_id="acc2")

    def d(i: int, v: Ven, name: str, **kw: object) -> Der:
        kw.setdefault("updated_at", T0 + timedelta(hours=i))
        return der(v.ven_id, f"r{i}", device_id=f"d{i:02}", device_name=name,
                   aggregator_id=v.aggregator_id, account_id=v.account_id, **kw)

    berlin = Location(lat=52.52, lon=13.40)
    ders = [
        d(0, v1, "Boiler-A", device_class=DeviceClass.DHW, max_capacity=3000.0,
          marketplace_availability=True, liveness=Liveness.ONLINE, location=berlin),
        d(1, v1, "boiler-b", device_class=DeviceClass.DHW, max_capacity=2000.0,
          location=Location(lat=52.53, lon=13.40)),
        d(2, v1, "ev_100%", device_class=DeviceClass.EV, max_capacity=11000.0,
          available_capacity=7000.0, dr_availability=False),
        d(3, v1, "ev-1000", device_class=DeviceClass.EV, max_capacity=3000.0,
          available_capacity=500.0, location=Location(lat=52.60, lon=13.40),
          updated_at=T0 + timedelta(hours=3, microseconds=123457)),
        d(4, v2, "Äpfel", device_class=DeviceClass.OTHER, availability=False,
          location=Location(lat=52.52, lon=13.41)),
        d(5, v2, "pv-roof", device_class=DeviceClass.PV, device_type=DeviceType.GENERATION,
          max_capacity=5000.0, available_capacity=1200.0, liveness=Liveness.STALE,
          location=Location(lat=48.14, lon=11.58)),
        # an offset that is not UTC: ordered by the instant, not by the text
        d(6, v2, "heat-pump", device_class=DeviceClass.HVAC, max_capacity=3000.0,
          updated_at=datetime(2026, 11, 23, 20, 30, tzinfo=timezone(timedelta(hours=5)))),
        d(7, v2, "far-east", device_class=DeviceClass.STORAGE, device_type=DeviceType.STORAGE,
          location=Location(lat=-17.0, lon=179.9)),
        d(8, v2, "far-west", device_class=DeviceClass.STORAGE, device_type=DeviceType.STORAGE,
          location=Location(lat=-17.0, lon=-179.8)),
    ]
    return [v1, v2], ders


async def seeded(store: Store) -> list[Der]:
    vens, ders = fleet()
    await seed(store, *vens, ders=ders)
    return ders


def dq(**kw: object) -> DiscoveryQuery:
    return DiscoveryQuery.model_validate(kw)


async def ids_of(store: Store, scope: Scope = SERVICE, **kw: object) -> list[str]:
    page = await store.find_ders(dq(**kw), scope)
    return [h.der.device_id for h in page.items]


async def every_page(store: Store, scope: Scope = SERVICE, **kw: object) -> list[Hit]:
    """All hits, page by page through the cursors (each DER exactly once)."""
    hits: list[Hit] = []
    cursor = None
    while True:
        page = await store.find_ders(dq(**kw, cursor=cursor), scope)
        hits += page.items
        cursor = page.next_cursor
        if cursor is None:
            return hits


def subscription(ven_id: str, rr: str, **kw: object) -> ReportSubscription:
    fields: dict[str, object] = dict(
        ven_id=ven_id, report_request_id=rr, report_specifier_id="all", r_ids=["agg.online"],
        granularity_s=60, report_back_duration_s=60, next_due_at=T0, created_at=T0)
    fields.update(kw)
    return ReportSubscription(**fields)  # type: ignore[arg-type]
