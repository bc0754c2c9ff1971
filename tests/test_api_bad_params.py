"""Out-of-range parameters and bodies on the side API are 400 problems naming what is
wrong, never a 500 (issue #13, finding 10): huge integers in cursors, Last-Event-ID,
after= and If-Match; datetimes outside what a timestamp holds; JSON nested deeper than
any real body. Real HTTP on loopback, real app, real store (TEST_STORE=mongo too)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import pytest

from registry.api import log as log_api
from registry.discovery import DiscoveryQuery, plan
from registry.models import Ven
from tests.api_support import Api, api_server, der, seed
from vtn.config import Config

HUGE = "1" * 31  # beyond any 64-bit integer
SSE_PATH = next(op.path for op in log_api.operations() if op.sse).removeprefix("/v1")
LOG_PATH = next(op.path for op in log_api.operations() if not op.sse).removeprefix("/v1")


@pytest.fixture
async def api(config: Config) -> AsyncIterator[Api]:
    async with api_server(config) as a:
        await seed(a, [Ven(ven_id="v1", ven_name="osb-1", aggregator_id="A1")],
                   [der("boiler", "v1", aggregator_id="A1", max_capacity=3000.0)])
        yield a


def cursor(sort: list[str], values: list[object]) -> str:
    signature = plan(DiscoveryQuery(sort=sort)).signature
    raw = json.dumps({"s": signature, "k": values}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def problem(api: Api, method: str, path: str, field: str, **kw: object) -> None:
    headers = {**api.headers(), **kw.pop("headers", {})}  # type: ignore[dict-item]
    async with api.session.request(method, api.base + path, headers=headers, **kw) as r:
        assert r.status == 400, (r.status, await r.text())
        assert r.content_type == "application/problem+json"
        body = await r.json(content_type=None)
    assert field in [e["field"] for e in body["errors"]], body


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"cursor={cursor([], [int(HUGE)])}", "cursor"),
        (f"sort=max_capacity&cursor={cursor(['max_capacity'], [-int(HUGE), 'x'])}", "cursor"),
        (f"sort=max_capacity&cursor={cursor(['max_capacity'], [1e308 * 10, 'x'])}", "cursor"),
        ("updated_since=0001-01-01T00:00:00", "updated_since"),
        ("updated_since=0001-01-01T00:00:00Z", "updated_since"),
        ("updated_since=0001-01-01T00:00:00%2B14:00", "updated_since"),
        ("max_capacity_min=nan", "max_capacity_min"),
        ("available_capacity_max=1e999", "available_capacity_max"),
    ],
)
async def test_out_of_range_discovery_parameters_are_400(
    api: Api, query: str, field: str
) -> None:
    await problem(api, "GET", f"/ders?{query}", field)


async def test_view_ders_cursor_with_a_huge_integer_is_400(api: Api) -> None:
    await problem(api, "GET", f"/views/A1/all/ders?cursor={cursor([], [int(HUGE)])}", "cursor")


async def test_log_after_beyond_64_bits_is_400(api: Api) -> None:
    await problem(api, "GET", f"{LOG_PATH}?after={HUGE}", "after")
    await problem(api, "GET", f"{SSE_PATH}?after={HUGE}", "after")


@pytest.mark.parametrize("last_id", [HUGE, "²", "-1", "1 2"])
async def test_bad_last_event_id_is_400_before_the_stream_starts(
    api: Api, last_id: str
) -> None:
    await problem(api, "GET", SSE_PATH, "Last-Event-ID", headers={"Last-Event-ID": last_id})


DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000
NESTED_900 = json.dumps({"device_name": "x", "location": {"lat": 1, "lon": 2, "x": json.loads(
    "[" * 900 + "]" * 900)}})


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, NESTED_900])
async def test_deeply_nested_patch_body_is_400(api: Api, body: str) -> None:
    device_id = (await api.served.vtn.store.ders_of_ven("v1"))[0].device_id
    await problem(api, "PATCH", f"/ders/{device_id}", "body", data=body,
                  headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("filters", [DEEP, DEEP_OBJECT, json.dumps({"q": json.loads(
    "[" * 900 + "]" * 900)})])
async def test_deeply_nested_view_body_is_400(api: Api, filters: str) -> None:
    body = '{"name": "deep", "aggregator_id": "A1", "filters": ' + filters + "}"
    await problem(api, "POST", "/views", "body", data=body,
                  headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("tag", [f'"{HUGE}"', '"²"', 'W/"¹"'])
async def test_if_match_that_is_no_etag_is_412_not_500(api: Api, tag: str) -> None:
    device_id = (await api.served.vtn.store.ders_of_ven("v1"))[0].device_id
    status, body, _ = await api.patch(f"/ders/{device_id}", {"availability": False},
                                      headers={"If-Match": tag})
    assert status == 412, body


async def test_the_same_requests_in_range_still_work(api: Api) -> None:
    status, body = await api.get("/ders?updated_since=1970-01-01T00:00:00&max_capacity_min=0")
    assert status == 200 and len(body["items"]) == 1
    status, body = await api.get(f"{LOG_PATH}?after=9223372036854775807")
    assert status == 200 and body["items"] == []
