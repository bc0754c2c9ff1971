"""Geo queries equal a brute-force haversine over the same DERs (a few thousand)."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from registry.models import Der, DeviceClass, Ven
from tests.api_support import Api, api_server, der, seed
from vtn.config import Config

CENTRE = (48.137, 11.575)
N = 3000


def brute_distance(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Independent haversine (spherical law, R = 6371008.8 m) to compare against."""
    r = 6_371_008.8
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    h = (math.sin((phi2 - phi1) / 2) ** 2
         + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * r * math.atan2(math.sqrt(h), math.sqrt(1 - h))


@pytest.fixture
async def geo(config: Config) -> AsyncIterator[tuple[Api, list[Der]]]:
    rnd = random.Random(7)
    ders: list[Der] = []
    for i in range(N):
        has_location = rnd.random() > 0.05
        lat = CENTRE[0] + rnd.gauss(0, 0.3) if has_location else None
        lon = CENTRE[1] + rnd.gauss(0, 0.45) if has_location else None
        ders.append(der(f"d{i:05d}", f"v{i % 40}", device_class=rnd.choice(list(DeviceClass)),
                        lat=lat, lon=lon, max_capacity=float(rnd.randrange(500, 20000, 500))))
    # a few across the antimeridian
    for i, lon in enumerate((179.99, -179.99, 179.5, -179.5)):
        ders.append(der(f"am{i}", "v-am", lat=-17.0, lon=lon))
    async with api_server(config) as api:
        vens = [Ven(ven_id=f"v{i}", ven_name=f"osb-{i}") for i in range(40)]
        await seed(api, [*vens, Ven(ven_id="v-am", ven_name="osb-am")], ders)
        yield api, ders


async def fetch_all(api: Api, query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, body = await api.get(f"/ders?{query}&limit=250{cursor}")
        assert status == 200, body
        items += body["items"]
        if not body["next_cursor"]:
            return items
        cursor = f"&cursor={body['next_cursor']}"


@pytest.mark.parametrize(
    ("lat", "lon", "radius_m"),
    [
        (*CENTRE, 5000),
        (*CENTRE, 20000),
        (48.5, 11.2, 12000),
        (47.9, 12.1, 30000),
        (48.137, 11.575, 150),
        (-17.0, 180.0, 5000),  # the circle spans the antimeridian
    ],
)
async def test_near_equals_brute_force(
    geo: tuple[Api, list[Der]], lat: float, lon: float, radius_m: float
) -> None:
    api, ders = geo
    got = await fetch_all(api, f"near={lat},{lon}&radius_m={radius_m}")
    expected = sorted(
        ((brute_distance(d.location.lat, d.location.lon, lat, lon), d.device_id)
         for d in ders if d.location is not None),
    )
    expected = [(dist, i) for dist, i in expected if dist <= radius_m]
    assert [g["device_id"] for g in got] == [i for _, i in expected]
    for g, (dist, _) in zip(got, expected, strict=True):
        assert g["distance_m"] == pytest.approx(dist, abs=0.01)


async def test_near_with_filter_and_capacity_sort_equals_brute_force(
    geo: tuple[Api, list[Der]],
) -> None:
    api, ders = geo
    lat, lon = CENTRE
    got = await fetch_all(
        api, f"near={lat},{lon}&radius_m=25000&device_class=dhwDevice&sort=-max_capacity"
    )
    expected = sorted(
        (d for d in ders if d.location is not None and d.device_class == DeviceClass.DHW
         and brute_distance(d.location.lat, d.location.lon, lat, lon) <= 25000),
        key=lambda d: (-(d.max_capacity or 0), d.device_id),
    )
    assert len(expected) > 50
    assert [g["device_id"] for g in got] == [d.device_id for d in expected]


@pytest.mark.parametrize(
    "bbox",
    [(48.0, 11.3, 48.3, 11.9), (47.8, 10.9, 48.1, 11.3), (-18.0, 179.8, -16.0, -179.8)],
)
async def test_bbox_equals_brute_force(
    geo: tuple[Api, list[Der]], bbox: tuple[float, float, float, float]
) -> None:
    api, ders = geo
    lat0, lon0, lat1, lon1 = bbox
    got = await fetch_all(api, "bbox=" + ",".join(map(str, bbox)))

    def inside(d: Der) -> bool:
        if d.location is None or not lat0 <= d.location.lat <= lat1:
            return False
        lon = d.location.lon
        return lon0 <= lon <= lon1 if lon0 <= lon1 else (lon >= lon0 or lon <= lon1)

    expected = sorted(d.device_id for d in ders if inside(d))
    assert [g["device_id"] for g in got] == expected
    assert expected  # each box holds some DERs
