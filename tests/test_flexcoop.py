"""FLEXCoop/Eve ``devices`` (issue #19): the seed's example query and Eve-style queries
answer the same DERs in the same order as /api/v1/ders for the same filter; paging,
projection, errors with Eve's ``_error``, PATCH with If-Match on ``_etag``. Real HTTP on
loopback, real store (TEST_STORE=mongo for MongoDB)."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest

from registry.discovery import EARTH_RADIUS_M
from registry.models import Der, DeviceClass, DeviceType, Ven
from tests.api_support import Api, api_server, der, seed
from vtn.config import Config

N = 400
CENTRE = (48.137, 11.575)  # lat, lon
POINT = {"type": "Point", "coordinates": [CENTRE[1], CENTRE[0]]}
TYPE_OF = {DeviceClass.PV: DeviceType.GENERATION, DeviceClass.STORAGE: DeviceType.STORAGE}


@pytest.fixture
async def flex(config: Config) -> AsyncIterator[Api]:
    rnd = random.Random(19)
    ders: list[Der] = []
    for i in range(N):
        cls = rnd.choice(list(DeviceClass))
        located = rnd.random() > 0.1
        ders.append(der(
            f"d{i:04d}", f"v{i % 8}", aggregator_id=f"agg-{'abc'[i % 3]}",
            account_id=f"acct-{i % 20}", device_class=cls,
            device_type=TYPE_OF.get(cls, DeviceType.DEMAND),
            lat=CENTRE[0] + rnd.gauss(0, 0.2) if located else None,
            lon=CENTRE[1] + rnd.gauss(0, 0.3) if located else None,
            max_capacity=float(rnd.randrange(500, 12000, 500)) if rnd.random() > 0.05 else None,
            available_capacity=float(rnd.randrange(0, 6000, 250)),
            availability=rnd.random() > 0.2, dr_availability=rnd.random() > 0.3,
            marketplace_availability=rnd.random() > 0.5,
        ))
    async with api_server(config) as api:
        vens = [Ven(ven_id=f"v{i}", ven_name=f"osb-{i}") for i in range(8)]
        await seed(api, vens, ders)
        yield api


def flex_url(api: Api, path: str = "") -> str:
    return api.base.removesuffix("/v1") + "/flexcoop/devices" + path


async def eve_get(api: Api, params: dict[str, Any], role: str = "service",
                  **claims: Any) -> tuple[int, Any]:
    qs = urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()})
    async with api.session.get(f"{flex_url(api)}?{qs}",
                               headers=api.headers(role, **claims)) as r:
        return r.status, await r.json(content_type=None)


async def eve_all(api: Api, params: dict[str, Any], role: str = "service",
                  **claims: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        status, body = await eve_get(api, {**params, "max_results": "37", "page": str(page)},
                                     role, **claims)
        assert status == 200, body
        items += body["_items"]
        assert body["_meta"]["max_results"] == 37 and body["_meta"]["page"] == page
        if "next" not in body["_links"]:
            assert len(items) == body["_meta"]["total"]
            return items
        page += 1


async def v1_all(api: Api, query: str, role: str = "service", **claims: Any) -> list[Any]:
    items: list[Any] = []
    cursor = ""
    while True:
        status, body = await api.get(f"/ders?{query}&limit=50{cursor}", role, **claims)
        assert status == 200, body
        items += body["items"]
        if not body["next_cursor"]:
            return items
        cursor = f"&cursor={body['next_cursor']}"


SEED_EXAMPLE = (  # "all domestic hot water devices near a location, available to the
    # marketplace, sorted by capacity, only device_id and max_capacity, in one call"
    {"where": {"device_class": "dhwDevice", "marketplace_availability": "yes",
               "location": {"$near": {"$geometry": POINT, "$maxDistance": 30000}}},
     "sort": '[("max_capacity", -1)]', "projection": {"device_id": 1, "max_capacity": 1}},
    "device_class=dhwDevice&marketplace_availability=true&near=48.137,11.575&radius_m=30000"
    "&sort=-max_capacity",
)
RECT = [[[11.3, 48.0], [11.8, 48.0], [11.8, 48.3], [11.3, 48.3], [11.3, 48.0]]]
QUERIES = [
    SEED_EXAMPLE,
    ({"where": {"device_class": "hvacDevice"}}, "device_class=hvacDevice"),
    ({"where": {"device_class": "otherLoad"}, "sort": "-max_capacity"},
     "device_class=otherLoad,pvSystem,storageDevice,evCharger&sort=-max_capacity"),
    ({"where": {"device_class": {"$in": ["hvacDevice", "dhwDevice"]}},
      "sort": '[("max_capacity", -1), ("device_name", 1)]'},
     "device_class=hvacDevice,dhwDevice&sort=-max_capacity,device_name"),
    ({"where": {"device_class": {"$nin": ["otherLoad"]}}},
     "device_class=hvacDevice,dhwDevice,lightingLoad"),
    ({"where": {"device_type": {"$ne": "Demand"}}, "sort": "device_type,-available_capacity"},
     "device_type=Generation,Storage&sort=device_type,-available_capacity"),
    ({"where": {"max_capacity": {"$gte": 5000, "$lt": 10000}}, "sort": "max_capacity"},
     "max_capacity_min=5000&max_capacity_max=9500&sort=max_capacity"),
    ({"where": {"$and": [{"availability": "yes"}, {"dr_availability": "no"}]}},
     "availability=true&dr_availability=false"),
    ({"where": {"$or": [{"aggregator_id": "agg-a"}, {"aggregator_id": "agg-b"}]}},
     "aggregator_id=agg-a,agg-b"),
    ({"where": {"location": {"$geoWithin": {"$geometry": {"type": "Polygon",
                                                          "coordinates": RECT}}}},
      "sort": "device_name"},
     "bbox=48.0,11.3,48.3,11.8&sort=device_name"),
    ({"where": {"location": {"$geoWithin": {"$centerSphere": [
        [CENTRE[1], CENTRE[0]], 10000 / EARTH_RADIUS_M]}}}},
     "near=48.137,11.575&radius_m=10000"),
    ({"where": {"device_name": {"$regex": "d01"}}}, "q=d01"),
    ({"where": {"ven_id": {"$in": ["v1", "v2"]}, "marketplace_availability": {"$ne": "no"}},
      "sort": "-available_capacity,device_name"},
     "ven_id=v1,v2&marketplace_availability=true&sort=-available_capacity,device_name"),
    ({"where": {"location": {"$exists": True}, "available_capacity": {"$gt": 3000}},
      "sort": '[("_updated", 1)]'},
     "bbox=-90,-180,90,180&available_capacity_min=3250&sort=updated_at"),
    ({"where": {"device_class": "lightingLoad", "location": {
        "$nearSphere": {"$geometry": POINT, "$maxDistance": 15000}}}},
     "device_class=lightingLoad&near=48.137,11.575&radius_m=15000"),
]


@pytest.mark.parametrize(("eve", "v1"), QUERIES, ids=[f"q{i}" for i in range(len(QUERIES))])
async def test_eve_query_equals_api_v1(flex: Api, eve: dict[str, Any], v1: str) -> None:
    got = await eve_all(flex, eve)
    want = await v1_all(flex, v1)
    assert want, "the fixture should match something"
    assert [d["device_id"] for d in got] == [d["device_id"] for d in want]
    for item in got:
        assert {"_id", "_etag", "_updated", "_created", "_links"} <= set(item)


@pytest.mark.parametrize("role,claims", [("aggregator", {"aggregator_id": "agg-b"}),
                                         ("prosumer", {"account_id": "acct-3"})])
async def test_scope_applies_as_in_api_v1(flex: Api, role: str, claims: dict[str, str]) -> None:
    eve, v1 = SEED_EXAMPLE[0] | {"where": {"device_class": {"$in": ["dhwDevice", "otherLoad"]}}}, \
        "device_class=dhwDevice,otherLoad,pvSystem,storageDevice,evCharger&sort=-max_capacity"
    got = await eve_all(flex, eve, role, **claims)
    want = await v1_all(flex, v1, role, **claims)
    assert want and [d["device_id"] for d in got] == [d["device_id"] for d in want]
    key = "aggregator_id" if role == "aggregator" else "account_id"
    assert {d[key] for d in await v1_all(flex, "", role, **claims)} == {claims[key]}


async def test_seed_example_in_one_call(flex: Api) -> None:
    status, body = await eve_get(flex, {**SEED_EXAMPLE[0], "max_results": "100"})
    assert status == 200
    want = await v1_all(flex, SEED_EXAMPLE[1] + "&fields=device_id,max_capacity")
    assert body["_meta"] == {"page": 1, "max_results": 100, "total": len(want)}
    assert [(d["device_id"], d.get("max_capacity")) for d in body["_items"]] == [
        (d["device_id"], d.get("max_capacity")) for d in want]
    for item in body["_items"]:
        assert set(item) <= {"_id", "_etag", "_updated", "_created", "_links",
                             "device_id", "max_capacity"}
        assert item["_id"] == item["device_id"]


async def test_item_fields_are_flexcoop(flex: Api) -> None:
    status, body = await eve_get(flex, {"max_results": "1000"})
    assert status == 200 and body["_meta"]["total"] == N
    classes = {d["device_class"] for d in body["_items"]}
    assert classes == {"hvacDevice", "lightingLoad", "dhwDevice", "otherLoad"}
    for d in body["_items"]:
        assert d["availability"] in ("yes", "no")
        assert d["marketplace_availability"] in ("yes", "no")
        assert d["device_type"] in ("Demand", "Generation", "Storage")
        if "location" in d:
            assert d["location"]["type"] == "Point" and len(d["location"]["coordinates"]) == 2
        assert d["_updated"].endswith(" GMT")
    async with flex.session.get(flex_url(flex, "/" + body["_items"][0]["device_id"]),
                                headers=flex.headers()) as r:
        item = await r.json()
        assert r.status == 200 and r.headers["ETag"].strip('"') == item["_etag"]


@pytest.mark.parametrize(("params", "needle"), [
    ({"where": {"$where": "sleep(1000)"}}, "$where"),
    ({"where": {"device_name": {"$function": {"body": "x"}}}}, "$function"),
    ({"where": {"device_name": {"$regex": "(a+)+$"}}}, "metacharacters"),
    ({"where": {"device_name": {"$regex": "a" * 101}}}, "1..100"),
    ({"where": {"ven_id": {"$nin": ["v1"]}}}, "$nin"),
    ({"where": {"status.mode": "1"}}, "status.mode"),
    ({"where": {"$or": [{"device_class": "hvacDevice"}, {"ven_id": "v1"}]}}, "$or"),
    ({"where": {"location": {"$near": {"$geometry": POINT}}}}, "$maxDistance"),
    ({"where": "{not json"}, "not JSON"),
    ({"sort": "secret_field"}, "cannot sort on secret_field"),
    ({"sort": "[__import__('os')]"}, "sort"),
    ({"projection": {"device_id": 1, "status": 0}}, "mix"),
    ({"where": {"max_capacity": {"$gt": 10 ** 400}}}, "finite number"),
    ({"where": {"location": {"$near": {"$geometry": {"type": "Point", "coordinates": [
        10 ** 400, 1]}, "$maxDistance": 5}}}}, "longitude"),
    ({"where": {"$and": [{"$and": [{"device_class": {"$expr": 1}}]}]}}, "$expr"),
    ({"where": json.dumps({"$and": [{"$and": []}]})}, "$and"),
    ({"max_results": "5000"}, "max_results"),
    ({"page": "500", "max_results": "1000"}, "page"),
])
async def test_rejected_with_problem_and_eve_error(flex: Api, params: dict[str, Any],
                                                   needle: str) -> None:
    status, body = await eve_get(flex, params)
    assert status == 400, body
    said = body["detail"] + json.dumps(body["errors"])
    assert needle in said and body["status"] == 400
    assert body["_status"] == "ERR" and body["_error"]["code"] == 400
    assert body["_error"]["message"] == body["detail"]


async def test_unauthorized_has_eve_error(flex: Api) -> None:
    async with flex.session.get(flex_url(flex)) as r:
        body = await r.json(content_type=None)
        assert r.status == 401 and r.content_type == "application/problem+json"
        assert body["_error"]["code"] == 401


async def test_paging_and_links(flex: Api) -> None:
    everything = await v1_all(flex, "sort=device_name")
    status, body = await eve_get(flex, {"sort": "device_name", "max_results": "10", "page": "3"})
    assert status == 200
    assert [d["device_id"] for d in body["_items"]] == [
        d["device_id"] for d in everything[20:30]]
    assert "page=4" in body["_links"]["next"]["href"] and "page=2" in body["_links"]["prev"]["href"]
    assert f"page={N // 10}" in body["_links"]["last"]["href"]
    status, body = await eve_get(flex, {"max_results": "10", "page": "999"})
    assert status == 200 and body["_items"] == [] and body["_meta"]["total"] == N


async def test_patch_with_if_match(flex: Api) -> None:
    status, body = await eve_get(flex, {"where": {"aggregator_id": "agg-a"}, "max_results": "1"})
    dev = body["_items"][0]
    url = flex_url(flex, "/" + dev["device_id"])
    hdr = flex.headers()
    async with flex.session.patch(url, json={"availability": "no"}, headers=hdr) as r:
        assert r.status == 428 and (await r.json(content_type=None))["_error"]["code"] == 428
    async with flex.session.patch(url, json={"availability": "no"},
                                  headers={**hdr, "If-Match": "0" * 40}) as r:
        assert r.status == 412
    patch = {"availability": "no", "marketplace_availability": "yes",
             "location": {"type": "Point", "coordinates": [13.4, 52.52]}}
    async with flex.session.patch(url, json=patch, headers={**hdr, "If-Match": dev["_etag"]}) as r:
        out = await r.json()
        assert r.status == 200 and out["_status"] == "OK" and out["_etag"] != dev["_etag"]
    async with flex.session.patch(url, json={"availability": "yes"},
                                  headers={**hdr, "If-Match": dev["_etag"]}) as r:
        assert r.status == 412  # the old _etag is stale now
    async with flex.session.get(url, headers=hdr) as r:
        item = await r.json()
    assert item["availability"] == "no" and item["marketplace_availability"] == "yes"
    assert item["location"] == patch["location"] and item["_etag"] == out["_etag"]
    status, v1 = await flex.get(f"/ders/{dev['device_id']}")
    assert v1["availability"] is False and v1["location"] == {"lat": 52.52, "lon": 13.4}
    # prosumers: the availabilities only
    pro = flex.headers("prosumer", account_id=item["account_id"])
    async with flex.session.patch(url, json={"device_name": "x"},
                                  headers={**pro, "If-Match": item["_etag"]}) as r:
        assert r.status == 403
    async with flex.session.patch(url, json={"device_class": "hvacDevice"},
                                  headers={**hdr, "If-Match": item["_etag"]}) as r:
        assert r.status == 400
    async with flex.session.get(url, headers={**hdr, "If-None-Match": f'"{item["_etag"]}"'}) as r:
        assert r.status == 304


async def test_api_v1_geojson_location(flex: Api) -> None:
    status, body = await flex.get("/ders?limit=1")
    device_id = body["items"][0]["device_id"]
    point = {"type": "Point", "coordinates": [2.35, 48.85]}
    status, out, r = await flex.patch(f"/ders/{device_id}", {"location": point})
    assert status == 200 and out["location"] == {"lat": 48.85, "lon": 2.35}
    prefer = {"Prefer": "location=geojson"}
    status, one = await flex.get(f"/ders/{device_id}", headers=prefer)
    assert one["location"] == point
    status, page = await flex.get("/ders?near=48.85,2.35&radius_m=10", headers=prefer)
    assert [d["location"] for d in page["items"]] == [point]
    status, out, r = await flex.patch(f"/ders/{device_id}", {"location": {"type": "Point",
                                                                        "coordinates": [1]}})
    assert status == 400


async def test_openapi_covers_devices(flex: Api) -> None:
    async with flex.session.get(f"{flex.base}/openapi.json") as r:
        doc = await r.json()
    paths = doc["paths"]
    assert {"get"} == set(paths["/api/flexcoop/devices"])
    assert {"get", "patch"} == set(paths["/api/flexcoop/devices/{device_id}"])
    names = {p["name"] for p in paths["/api/flexcoop/devices"]["get"]["parameters"]}
    assert names == {"where", "sort", "projection", "max_results", "page"}
    assert "428" in paths["/api/flexcoop/devices/{device_id}"]["patch"]["responses"]


async def test_without_total_like_eve_optimize_pagination(config: Config) -> None:
    cfg = config.model_copy(update={"api": config.api.model_copy(
        update={"flexcoop_total": False})})
    async with api_server(cfg) as api:
        await seed(api, [Ven(ven_id="v1", ven_name="osb-1")],
                   [der(f"d{i}", "v1") for i in range(5)])
        status, body = await eve_get(api, {"max_results": "2", "sort": "device_name"})
        assert status == 200 and body["_meta"] == {"page": 1, "max_results": 2}
        assert "next" in body["_links"] and "last" not in body["_links"]
        status, body = await eve_get(api, {"max_results": "2", "page": "3",
                                           "sort": "device_name"})
        assert [d["device_name"] for d in body["_items"]] == ["d4"]
        assert "next" not in body["_links"] and "prev" in body["_links"]
