"""Access matrix: every side API endpoint x every role x own / foreign DER.

Tenant A (aggregator A1, prosumer account X1) owns DER "own"; tenant B (A2 / X2) owns
"foreign". Service tokens see both. A foreign DER must never show up: not in lists,
counts, stats, geo results, single reads, patches, the event log or the SSE stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from registry.group_model import Group
from registry.models import DeviceClass, LogEntry, Ven
from registry.port import Batch
from tests.api_support import Api, api_server, der, seed
from vtn.config import Config

ROLES = {
    "service": {},
    "aggregator": {"aggregator_id": "A1"},
    "prosumer": {"account_id": "X1"},
}


@dataclass
class World:
    api: Api
    ids: dict[str, str]  # own / foreign -> device_id
    vens: dict[str, str]  # own / foreign -> ven_id


@pytest.fixture
async def world(config: Config) -> AsyncIterator[World]:
    async with api_server(config) as api:
        own = der("own", "ven-a", aggregator_id="A1", account_id="X1",
                  device_class=DeviceClass.DHW, lat=52.52, lon=13.40, max_capacity=2000.0)
        foreign = der("foreign", "ven-b", aggregator_id="A2", account_id="X2",
                      device_class=DeviceClass.DHW, lat=52.521, lon=13.401, max_capacity=3000.0)
        vens = [
            Ven(ven_id="ven-a", ven_name="osb-a", aggregator_id="A1", account_id="X1"),
            Ven(ven_id="ven-b", ven_name="osb-b", aggregator_id="A2", account_id="X2"),
        ]
        # the foreign entry first: a stream that could see it would deliver it first
        log = [
            LogEntry(kind="der.test", ven_id=d.ven_id, device_id=d.device_id,
                     aggregator_id=d.aggregator_id, account_id=d.account_id)
            for d in (foreign, own)
        ]
        await seed(api, vens, [own, foreign], log)
        await api.served.vtn.store.commit(Batch(groups=[
            (Group(group_id="g-A1", aggregator_id="A1", name="dhw",
                   filters={"device_class": ["dhwDevice"]}), None),
            (Group(group_id="g-A2", aggregator_id="A2", name="dhw",
                   filters={"device_class": ["dhwDevice"]}), None),
        ]))
        yield World(api, {"own": own.device_id, "foreign": foreign.device_id},
                    {"own": "ven-a", "foreign": "ven-b"})


Probe = Callable[[World, str, str], Awaitable[Any]]


async def list_ders(w: World, role: str, target: str) -> bool:
    status, body = await w.api.get("/ders?limit=1000", role, **ROLES[role])
    assert status == 200
    return w.ids[target] in {d["device_id"] for d in body["items"]}


async def list_filtered(w: World, role: str, target: str) -> bool:
    status, body = await w.api.get(
        f"/ders?ven_id={w.vens[target]}&total=true", role, **ROLES[role]
    )
    assert status == 200
    assert body["total"] == len(body["items"])
    return w.ids[target] in {d["device_id"] for d in body["items"]}


async def geo(w: World, role: str, target: str) -> bool:
    status, body = await w.api.get(
        "/ders?near=52.52,13.40&radius_m=5000&device_class=dhwDevice&total=true",
        role, **ROLES[role],
    )
    assert status == 200
    return w.ids[target] in {d["device_id"] for d in body["items"]}


async def count(w: World, role: str, target: str) -> int:
    status, body = await w.api.get(
        f"/ders?total=true&limit=1&aggregator_id={'A1' if target == 'own' else 'A2'}",
        role, **ROLES[role],
    )
    assert status == 200
    return int(body["total"])


async def stats(w: World, role: str, target: str) -> int:
    status, body = await w.api.get("/stats", role, **ROLES[role])
    assert status == 200
    return int(body["total"])


async def get_der(w: World, role: str, target: str) -> int:
    status, _ = await w.api.get(f"/ders/{w.ids[target]}", role, **ROLES[role])
    return status


async def patch_flags(w: World, role: str, target: str) -> int:
    status, _, _ = await w.api.patch(
        f"/ders/{w.ids[target]}", {"marketplace_availability": True}, role, **ROLES[role]
    )
    return status


async def patch_name(w: World, role: str, target: str) -> int:
    status, _, _ = await w.api.patch(
        f"/ders/{w.ids[target]}", {"device_name": "renamed"}, role, **ROLES[role]
    )
    return status


async def list_vens(w: World, role: str, target: str) -> bool:
    status, body = await w.api.get("/vens", role, **ROLES[role])
    assert status == 200
    return w.vens[target] in {v["ven_id"] for v in body["items"]}


async def get_ven(w: World, role: str, target: str) -> int:
    status, body = await w.api.get(f"/vens/{w.vens[target]}", role, **ROLES[role])
    if status == 200:
        assert {d["device_id"] for d in body["ders"]} == {w.ids[target]}
    return status


async def log(w: World, role: str, target: str) -> bool:
    status, body = await w.api.get("/log?kind=der.test", role, **ROLES[role])
    assert status == 200
    return w.ids[target] in {e["device_id"] for e in body["items"]}


async def log_for_device(w: World, role: str, target: str) -> bool:
    status, body = await w.api.get(f"/log?device_id={w.ids[target]}", role, **ROLES[role])
    assert status == 200
    return bool(body["items"])


async def stream(w: World, role: str, target: str) -> bool:
    """Read the SSE replay until the own entry arrives (it was logged last)."""
    seen: list[str] = []
    headers = w.api.headers(role, **ROLES[role])
    async with w.api.session.get(
        w.api.base + "/log/stream?kind=der.test", headers=headers
    ) as r:
        assert r.status == 200
        assert r.content_type == "text/event-stream"
        async with asyncio.timeout(10):
            async for line in r.content:
                if line.startswith(b"data: "):
                    seen.append(json.loads(line[6:])["device_id"])
                    if seen[-1] == w.ids["own"]:
                        break
    return w.ids[target] in seen


OWNER = {"own": "A1", "foreign": "A2"}


async def list_views(w: World, role: str, target: str) -> bool | int:
    status, body = await w.api.get("/views", role, **ROLES[role])
    if status != 200:
        return status
    return OWNER[target] in {v["aggregator_id"] for v in body["items"]}


async def get_view(w: World, role: str, target: str) -> int:
    status, _ = await w.api.get(f"/views/{OWNER[target]}/dhw", role, **ROLES[role])
    return status


async def view_ders(w: World, role: str, target: str) -> bool | int:
    status, body = await w.api.get(f"/views/{OWNER[target]}/dhw/ders", role, **ROLES[role])
    if status != 200:
        return status
    assert {d["device_id"] for d in body["items"]} == {w.ids[target]}  # nothing else
    return True


async def create_view(w: World, role: str, target: str) -> int:
    body = {"name": "new", "aggregator_id": OWNER[target], "filters": {"liveness": ["online"]}}
    async with w.api.session.post(w.api.base + "/views", json=body,
                                  headers=w.api.headers(role, **ROLES[role])) as r:
        return r.status


async def delete_view(w: World, role: str, target: str) -> int:
    async with w.api.session.delete(w.api.base + f"/views/{OWNER[target]}/dhw",
                                    headers=w.api.headers(role, **ROLES[role])) as r:
        return r.status


async def _send(w: World, method: str, path: str, role: str, body: Any = None
                ) -> tuple[int, Any]:
    async with w.api.session.request(method, w.api.base + path, json=body,
                                     headers=w.api.headers(role, **ROLES[role])) as r:
        return r.status, await r.json(content_type=None) if r.status != 204 else None


async def list_groups(w: World, role: str, target: str) -> bool | int:
    status, body = await w.api.get("/groups", role, **ROLES[role])
    if status != 200:
        return status
    return OWNER[target] in {g["aggregator_id"] for g in body["items"]}


async def get_group(w: World, role: str, target: str) -> int:
    status, _ = await w.api.get(f"/groups/g-{OWNER[target]}", role, **ROLES[role])
    return status


async def group_members(w: World, role: str, target: str) -> bool | int:
    status, body = await w.api.get(f"/groups/g-{OWNER[target]}/members", role, **ROLES[role])
    if status != 200:
        return status
    assert {d["device_id"] for d in body["items"]} == {w.ids[target]}  # nothing else
    return True


async def group_count(w: World, role: str, target: str) -> int:
    """The roll-up's member count (a status code when the group is not visible)."""
    status, body = await w.api.get(f"/groups/g-{OWNER[target]}/status", role, **ROLES[role])
    return int(body["members"]) if status == 200 else status


async def group_forecast(w: World, role: str, target: str) -> int:
    status, _ = await w.api.get(f"/groups/g-{OWNER[target]}/forecast?horizon_h=1", role,
                                **ROLES[role])
    return status


async def group_cim(w: World, role: str, target: str) -> int:
    status, _ = await w.api.get(f"/groups/g-{OWNER[target]}/cim", role, **ROLES[role])
    return status


async def all_group_count(w: World, role: str, target: str) -> int:
    """The default group 'all' by name: an aggregator's own DERs only."""
    status, body = await w.api.get("/groups/all/status", role, **ROLES[role])
    if status != 200:
        return status
    status, page = await w.api.get("/groups/all/members", role, **ROLES[role])
    return int(w.ids[target] in {d["device_id"] for d in page["items"]})


async def create_group(w: World, role: str, target: str) -> int:
    status, _ = await _send(w, "POST", "/groups", role, {
        "name": "new", "aggregator_id": OWNER[target], "filters": {"liveness": ["online"]}})
    return status


async def include_der(w: World, role: str, target: str) -> int:
    """Include the target DER in A1's group: another tenant's DER is refused."""
    status, _ = await _send(w, "POST", "/groups/g-A1/members", role,
                            {"include": [w.ids[target]]})
    return status


async def patch_group(w: World, role: str, target: str) -> int:
    status, _ = await _send(w, "PATCH", f"/groups/g-{OWNER[target]}", role,
                            {"description": "changed"})
    return status


async def delete_group(w: World, role: str, target: str) -> int:
    status, _ = await _send(w, "DELETE", f"/groups/g-{OWNER[target]}", role)
    return status


GROUP_COUNT = {"service": (1, 1), "aggregator": (1, 404), "prosumer": (403, 403)}
ALL_GROUP = {"service": (404, 404), "aggregator": (1, 0), "prosumer": (403, 403)}
INCLUDE = {"service": (200, 400), "aggregator": (200, 400), "prosumer": (403, 403)}
GROUP_CHANGE = {"service": (200, 200), "aggregator": (200, 404), "prosumer": (403, 403)}

VIEWS_SEEN = {"service": (True, True), "aggregator": (True, False), "prosumer": (403, 403)}
VIEW_READ = {"service": (200, 200), "aggregator": (200, 404), "prosumer": (403, 403)}
VIEW_DERS = {"service": (True, True), "aggregator": (True, 404), "prosumer": (403, 403)}
VIEW_CREATE = {"service": (201, 201), "aggregator": (201, 403), "prosumer": (403, 403)}
VIEW_DELETE = {"service": (204, 204), "aggregator": (204, 404), "prosumer": (403, 403)}

VISIBLE = {"service": (True, True), "aggregator": (True, False), "prosumer": (True, False)}
COUNTS = {"service": (1, 1), "aggregator": (1, 0), "prosumer": (1, 0)}
STATS = {"service": (2, 2), "aggregator": (1, 1), "prosumer": (1, 1)}
READ = {"service": (200, 200), "aggregator": (200, 404), "prosumer": (200, 404)}
# a prosumer may not rename anything: forbidden whatever the DER
RENAME = {"service": (200, 200), "aggregator": (200, 404), "prosumer": (403, 403)}

MATRIX: list[tuple[str, Probe, dict[str, tuple[Any, Any]]]] = [
    ("GET /ders", list_ders, VISIBLE),
    ("GET /ders?ven_id&total", list_filtered, VISIBLE),
    ("GET /ders?near (geo)", geo, VISIBLE),
    ("GET /ders total", count, COUNTS),
    ("GET /stats", stats, STATS),
    ("GET /ders/{id}", get_der, READ),
    ("PATCH /ders/{id} flags", patch_flags, READ),
    ("PATCH /ders/{id} device_name", patch_name, RENAME),
    ("GET /vens", list_vens, VISIBLE),
    ("GET /vens/{id}", get_ven, READ),
    ("GET /log", log, VISIBLE),
    ("GET /log?device_id", log_for_device, VISIBLE),
    ("GET /log/stream", stream, VISIBLE),
    ("GET /views", list_views, VIEWS_SEEN),
    ("GET /views/{agg}/{name}", get_view, VIEW_READ),
    ("GET /views/{agg}/{name}/ders", view_ders, VIEW_DERS),
    ("POST /views", create_view, VIEW_CREATE),
    ("DELETE /views/{agg}/{name}", delete_view, VIEW_DELETE),
    ("GET /groups", list_groups, VIEWS_SEEN),
    ("GET /groups/{id}", get_group, VIEW_READ),
    ("GET /groups/{id}/members", group_members, VIEW_DERS),
    ("GET /groups/{id}/status", group_count, GROUP_COUNT),
    ("GET /groups/{id}/forecast", group_forecast, VIEW_READ),
    ("GET /groups/{id}/cim", group_cim, VIEW_READ),
    ("GET /groups/all", all_group_count, ALL_GROUP),
    ("POST /groups", create_group, VIEW_CREATE),
    ("POST /groups/{id}/members", include_der, INCLUDE),
    ("PATCH /groups/{id}", patch_group, GROUP_CHANGE),
    ("DELETE /groups/{id}", delete_group, VIEW_DELETE),
]
CASES = [
    pytest.param(probe, role, target, expected[role][i], id=f"{name}-{role}-{target}")
    for name, probe, expected in MATRIX
    for role in ROLES
    for i, target in enumerate(("own", "foreign"))
]


@pytest.mark.parametrize(("probe", "role", "target", "expected"), CASES)
async def test_access_matrix(world: World, probe: Probe, role: str, target: str,
                             expected: Any) -> None:
    assert await probe(world, role, target) == expected


async def test_patch_of_foreign_der_changes_nothing_and_logs_nothing(world: World) -> None:
    status, _, _ = await world.api.patch(
        f"/ders/{world.ids['foreign']}", {"availability": False}, "aggregator",
        aggregator_id="A1",
    )
    assert status == 404
    status, body = await world.api.get(f"/ders/{world.ids['foreign']}")
    assert status == 200 and body["availability"] is True and body["version"] == 1
    status, body = await world.api.get("/log?kind=der.changed")
    assert body["items"] == []


async def test_prosumer_sets_own_flags_and_the_change_is_attributed(world: World) -> None:
    status, body, r = await world.api.patch(
        f"/ders/{world.ids['own']}", {"dr_availability": False}, "prosumer",
        account_id="X1", subject="alice",
    )
    assert status == 200 and body["dr_availability"] is False
    _, events = await world.api.get("/log?kind=der.changed", "prosumer", account_id="X1")
    assert [e["actor"] for e in events["items"]] == ["alice"]
    assert events["items"][0]["data"]["changes"] == {
        "dr_availability": {"from": True, "to": False}
    }


ENDPOINTS = ["/ders", "/ders/x", "/vens", "/vens/x", "/log", "/log/stream", "/stats",
             "/events", "/events/x", "/opts", "/views", "/views/A1/dhw", "/views/A1/dhw/ders"]


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_no_token_is_401_problem(world: World, path: str) -> None:
    async with world.api.session.get(world.api.base + path) as r:
        assert r.status == 401
        assert r.content_type == "application/problem+json"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def _forged(api: Api, **changes: Any) -> str:
    claims = jwt.decode(api.token("service"), options={"verify_signature": False})
    claims.update(changes)
    key = changes.pop("_key", None) or (api.config.data_dir / "api-dev-key").read_text()
    claims.pop("_key", None)
    return jwt.encode(claims, key, algorithm="HS256")


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": 1},
        {"aud": "someone-else"},
        {"iss": "someone-else"},
        {"_key": "not-the-key-not-the-key-not-the-key!"},
        {"role": "admin"},
        {"role": "aggregator"},  # no aggregator_id claim
        {"role": "prosumer"},  # no account_id claim
    ],
    ids=["expired", "audience", "issuer", "signature", "role", "aggregator-no-id",
         "prosumer-no-account"],
)
async def test_bad_tokens_are_401(world: World, changes: dict[str, Any]) -> None:
    token = _forged(world.api, **changes)
    async with world.api.session.get(
        world.api.base + "/ders", headers={"Authorization": f"Bearer {token}"}
    ) as r:
        assert r.status == 401, await r.text()
