"""Side API behaviour over real HTTP on loopback: discovery, PATCH, VENs, the change log, docs."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from registry.discovery import DiscoveryQuery
from registry.models import DeviceClass, DeviceType, Liveness, Ven
from tests.api_support import Api, api_server, at, der, seed
from tests.oadr import call, metadata, register
from vtn.cli import main as cli
from vtn.config import Config

CENTRE = (52.52, 13.40)


@pytest.fixture
async def api(config: Config) -> AsyncIterator[Api]:
    async with api_server(config) as a:
        yield a


async def fleet(api: Api) -> dict[str, str]:
    """A small mixed registry; returns device_name -> device_id."""
    lat, lon = CENTRE
    ders = [
        der("boiler-near", "v1", aggregator_id="A1", device_class=DeviceClass.DHW,
            lat=lat + 0.01, lon=lon, max_capacity=3000.0, marketplace_availability=True,
            liveness=Liveness.ONLINE, updated_at=at(20)),
        der("boiler-mid", "v1", aggregator_id="A1", device_class=DeviceClass.DHW,
            lat=lat + 0.03, lon=lon, max_capacity=2000.0, marketplace_availability=True,
            updated_at=at(21)),
        der("boiler-off-market", "v1", aggregator_id="A1", device_class=DeviceClass.DHW,
            lat=lat, lon=lon + 0.01, max_capacity=9000.0, marketplace_availability=False,
            updated_at=at(22)),
        der("boiler-far", "v2", aggregator_id="A2", device_class=DeviceClass.DHW,
            lat=lat + 0.2, lon=lon, max_capacity=4000.0, marketplace_availability=True,
            updated_at=at(10)),
        der("pv-roof", "v2", aggregator_id="A2", device_class=DeviceClass.PV,
            device_type=DeviceType.GENERATION, lat=lat, lon=lon, max_capacity=5000.0,
            available_capacity=1200.0, marketplace_availability=True, updated_at=at(11)),
        der("ev_100%", "v2", aggregator_id="A2", account_id="X9", device_class=DeviceClass.EV,
            max_capacity=11000.0, dr_availability=False, available_capacity=7000.0,
            updated_at=at(12)),
        der("heat-pump", "v1", aggregator_id="A1", device_class=DeviceClass.HVAC,
            availability=False, updated_at=at(13)),
    ]
    vens = [Ven(ven_id="v1", ven_name="osb-1", aggregator_id="A1"),
            Ven(ven_id="v2", ven_name="osb-2", aggregator_id="A2")]
    await seed(api, vens, ders)
    return {d.device_name: d.device_id for d in ders}


def names(body: dict[str, Any], ids: dict[str, str]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[d["device_id"]] for d in body["items"]]


async def test_issue_example_dhw_within_5km_on_marketplace_by_capacity(api: Api) -> None:
    ids = await fleet(api)
    status, body = await api.get(
        "/ders?device_class=dhwDevice&near=52.52,13.40&radius_m=5000"
        "&marketplace_availability=true&sort=-max_capacity&fields=device_id,max_capacity"
    )
    assert status == 200
    assert names(body, ids) == ["boiler-near", "boiler-mid"]
    assert body["items"] == [
        {"device_id": ids["boiler-near"], "max_capacity": 3000.0},
        {"device_id": ids["boiler-mid"], "max_capacity": 2000.0},
    ]


async def test_geo_results_carry_distance_and_sort_by_it(api: Api) -> None:
    ids = await fleet(api)
    status, body = await api.get("/ders?near=52.52,13.40&radius_m=4000")
    assert status == 200
    assert names(body, ids) == ["pv-roof", "boiler-off-market", "boiler-near", "boiler-mid"]
    distances = [d["distance_m"] for d in body["items"]]
    assert distances == sorted(distances) and distances[0] == 0.0
    assert 1100 < distances[2] < 1120  # 0.01 degrees of latitude
    _, desc = await api.get("/ders?near=52.52,13.40&radius_m=4000&sort=-distance_m")
    assert names(desc, ids) == names(body, ids)[::-1]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("device_class=dhwDevice,pvSystem&aggregator_id=A2",
         ["boiler-far", "pv-roof"]),
        ("device_type=Generation", ["pv-roof"]),
        ("availability=false", ["heat-pump"]),
        ("dr_availability=false", ["ev_100%"]),
        ("marketplace_availability=true&max_capacity_min=3000&max_capacity_max=4000",
         ["boiler-far", "boiler-near"]),
        ("available_capacity_min=1000&available_capacity_max=2000", ["pv-roof"]),
        ("liveness=online", ["boiler-near"]),
        ("ven_id=v2&account_id=X9", ["ev_100%"]),
        ("updated_since=2026-11-21T00:00:00Z", ["boiler-mid", "boiler-off-market"]),
        ("q=BOILER-M", ["boiler-mid"]),
        ("q=100%25", ["ev_100%"]),  # % is a literal, not a wildcard
        ("q=ev_1", ["ev_100%"]),
        ("bbox=52.51,13.39,52.56,13.405", ["boiler-mid", "boiler-near", "pv-roof"]),
    ],
)
async def test_filters(api: Api, query: str, expected: list[str]) -> None:
    ids = await fleet(api)
    status, body = await api.get(f"/ders?{query}&sort=device_name")
    assert status == 200, body
    assert names(body, ids) == expected


async def test_multi_key_sort_and_cursor_pages_cover_everything_once(api: Api) -> None:
    ids = await fleet(api)
    status, full = await api.get("/ders?sort=-max_capacity,device_name&limit=100")
    assert status == 200
    # NULL capacities last when descending; ties broken by name
    assert names(full, ids) == ["ev_100%", "boiler-off-market", "pv-roof", "boiler-far",
                                "boiler-near", "boiler-mid", "heat-pump"]
    seen: list[str] = []
    url = api.base + "/ders?sort=-max_capacity,device_name&limit=2&total=true"
    pages = 0
    while url:
        async with api.session.get(url, headers=api.headers()) as r:
            body = await r.json()
            assert body["total"] == 7
            seen += names(body, ids)
            link = r.headers.get("Link")
            assert (link is None) == (body["next_cursor"] is None)
            url = link.split(">")[0].lstrip("<") if link else ""
            pages += 1
    assert seen == names(full, ids) and pages == 4


async def test_cursor_is_stable_when_rows_are_inserted_before_it(api: Api) -> None:
    ids = await fleet(api)
    _, first = await api.get("/ders?sort=device_name&limit=3")
    await seed(api, [], [der("aaa-new", "v1", aggregator_id="A1")])
    _, second = await api.get(f"/ders?sort=device_name&limit=3&cursor={first['next_cursor']}")
    assert names(first, ids) == ["boiler-far", "boiler-mid", "boiler-near"]
    assert names(second, ids) == ["boiler-off-market", "ev_100%", "heat-pump"]


async def test_cursor_of_another_sort_is_rejected(api: Api) -> None:
    await fleet(api)
    _, first = await api.get("/ders?sort=device_name&limit=2")
    status, body = await api.get(f"/ders?sort=-max_capacity&cursor={first['next_cursor']}")
    assert status == 400 and body["errors"][0]["field"] == "cursor"
    status, body = await api.get("/ders?cursor=garbage!")
    assert status == 400 and body["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("colour=red", "colour"),  # unknown filter field
        ("max_capacity[gte]=5", "max_capacity[gte]"),  # unknown operator
        ("max_capacity__gt=5", "max_capacity__gt"),
        ("sort=password", "sort"),  # unknown sort key
        ("sort=max_capacity,-max_capacity", "sort"),
        ("sort=distance_m", "sort"),  # needs near
        ("device_class=toaster", "device_class"),
        ("availability=maybe", "availability"),
        ("max_capacity_min=lots", "max_capacity_min"),
        ("near=52.5,13.4", "radius_m"),
        ("near=95,13.4&radius_m=10", "near"),
        ("bbox=1,2,3", "bbox"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("fields=device_id,secret", "fields"),
        ("updated_since=yesterday", "updated_since"),
        ("limit=1&limit=2", "limit"),
    ],
)
async def test_bad_queries_are_400_problems_naming_the_field(
    api: Api, query: str, field: str
) -> None:
    async with api.session.get(f"{api.base}/ders?{query}", headers=api.headers()) as r:
        assert r.status == 400
        assert r.content_type == "application/problem+json"
        body = await r.json(content_type=None)
    assert body["status"] == 400 and body["title"]
    assert field in [e["field"] for e in body["errors"]], body
    assert all(e["message"] for e in body["errors"])


async def test_der_read_and_patch_with_etag(api: Api) -> None:
    ids = await fleet(api)
    url = f"{api.base}/ders/{ids['boiler-near']}"
    async with api.session.get(url, headers=api.headers()) as r:
        assert r.status == 200
        tag = r.headers["ETag"]
        assert (await r.json())["device_name"] == "boiler-near"
    change = {"device_name": "Boiler (cellar)", "marketplace_availability": False,
              "location": {"lat": 52.6, "lon": 13.5}}
    headers = {**api.headers("aggregator", aggregator_id="A1", subject="ops-bob"),
               "If-Match": tag}
    async with api.session.patch(url, json=change, headers=headers) as r:
        assert r.status == 200
        new_tag = r.headers["ETag"]
        body = await r.json()
    assert new_tag != tag
    assert body["device_name"] == "Boiler (cellar)" and body["location"] == change["location"]
    assert body["marketplace_availability"] is False
    # the old ETag is stale now
    async with api.session.patch(url, json={"availability": False}, headers=headers) as r:
        assert r.status == 412 and r.content_type == "application/problem+json"
    # the change is visible to queries (columns, not only the document)
    _, found = await api.get("/ders?q=cellar&near=52.6,13.5&radius_m=10")
    assert [d["device_id"] for d in found["items"]] == [ids["boiler-near"]]
    # and logged with the token subject as actor
    _, log = await api.get(f"/log?kind=der.changed&device_id={ids['boiler-near']}")
    (entry,) = log["items"]
    assert entry["actor"] == "ops-bob" and entry["aggregator_id"] == "A1"
    assert entry["data"]["changes"]["device_name"] == {"from": "boiler-near",
                                                       "to": "Boiler (cellar)"}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"liveness": "online"}, 400, "liveness"),  # not a user field
        ({"max_capacity": 1}, 400, "max_capacity"),
        ({"availability": "sometimes"}, 400, "availability"),
        ({"availability": None}, 400, "availability"),
        ({"location": {"lat": 91, "lon": 0}}, 400, "location.lat"),
        ([1, 2], 400, "body"),
    ],
)
async def test_bad_patches_are_rejected(api: Api, body: Any, status: int, field: str) -> None:
    ids = await fleet(api)
    got, problem, _ = await api.patch(f"/ders/{ids['pv-roof']}", body)
    assert got == status and field in [e["field"] for e in problem["errors"]]
    _, der_now = await api.get(f"/ders/{ids['pv-roof']}")
    assert der_now["version"] == 1


async def test_user_fields_survive_a_new_metadata_report(api: Api) -> None:
    vtn = api.served.vtn
    reply = await register(vtn, "osb-9", aggregator_id="A1")
    ven_id = reply.ven_id or ""
    await call(vtn, "EiReport", metadata(ven_id, {"boiler": "Water_Heater"}))
    _, body = await api.get(f"/ders?ven_id={ven_id}")
    (boiler,) = body["items"]
    assert boiler["device_class"] == "dhwDevice" and boiler["location"] == {
        "lat": 52.5, "lon": 13.4}
    status, _, _ = await api.patch(f"/ders/{boiler['device_id']}",
                                   {"device_name": "Kitchen boiler", "availability": False})
    assert status == 200
    await call(vtn, "EiReport", metadata(ven_id, {"boiler": "Water_Heater"}))
    _, after = await api.get(f"/ders/{boiler['device_id']}")
    assert after["device_name"] == "Kitchen boiler" and after["availability"] is False


async def test_vens_list_and_detail_with_ders_and_liveness(api: Api) -> None:
    ids = await fleet(api)
    status, body = await api.get("/vens")
    assert status == 200
    assert [(v["ven_id"], v["liveness"]) for v in body["items"]] == [
        ("v1", "offline"), ("v2", "offline")]
    assert body["items"][0]["fingerprint"] is None  # bound certificates: docs/dashboard.md
    status, v2 = await api.get("/vens/v2")
    assert status == 200
    assert sorted(names({"items": v2["ders"]}, ids)) == ["boiler-far", "ev_100%", "pv-roof"]
    status, _ = await api.get("/vens/nope")
    assert status == 404


async def test_stats_count_by_class_and_liveness(api: Api) -> None:
    await fleet(api)
    status, body = await api.get("/stats")
    assert status == 200
    assert body["total"] == 7
    assert body["by_class"] == {"dhwDevice": 4, "pvSystem": 1, "evCharger": 1, "hvacDevice": 1}
    assert body["by_liveness"] == {"online": 1, "offline": 6}
    _, a1 = await api.get("/stats", "aggregator", aggregator_id="A1")
    assert a1["total"] == 4


async def test_log_filter_and_continue_after_seq(api: Api) -> None:
    ids = await fleet(api)
    for i, name in enumerate(("boiler-near", "pv-roof", "boiler-near")):
        await api.patch(f"/ders/{ids[name]}", {"device_name": f"{name}-{i}"})
    status, all_changes = await api.get("/log?kind=der.changed")
    assert status == 200 and len(all_changes["items"]) == 3
    seqs = [e["seq"] for e in all_changes["items"]]
    assert seqs == sorted(seqs)
    _, page = await api.get(f"/log?kind=der.changed&after={seqs[0]}&limit=1")
    assert [e["seq"] for e in page["items"]] == [seqs[1]] and page["last_seq"] == seqs[1]
    _, by_device = await api.get(f"/log?device_id={ids['pv-roof']}")
    assert [e["seq"] for e in by_device["items"]] == [seqs[1]]
    _, other_kind = await api.get("/log?kind=ven.liveness")
    assert other_kind["items"] == []


async def read_events(resp: Any, n: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(10):
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if not line:
                if "data" in current:
                    events.append(current)
                    if len(events) == n:
                        return events
                current = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                current[key] = value
    return events


async def test_sse_replays_after_last_event_id_then_streams_new_changes(api: Api) -> None:
    ids = await fleet(api)
    for i in range(3):
        await api.patch(f"/ders/{ids['boiler-far']}", {"device_name": f"far-{i}"})
    _, log = await api.get("/log?kind=der.changed")
    seqs = [e["seq"] for e in log["items"]]
    headers = {**api.headers(), "Last-Event-ID": str(seqs[0])}
    async with api.session.get(f"{api.base}/log/stream?kind=der.changed",
                               headers=headers) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
        replay = await read_events(r, 2)
        assert [int(e["id"]) for e in replay] == seqs[1:]
        assert {e["event"] for e in replay} == {"der.changed"}
        await api.patch(f"/ders/{ids['pv-roof']}", {"availability": False})
        (live,) = await read_events(r, 1)
    data = json.loads(live["data"])
    assert data["device_id"] == ids["pv-roof"] and int(live["id"]) > seqs[-1]


async def test_sse_stream_ends_when_the_server_stops(config: Config) -> None:
    async with api_server(config) as api:
        r = await api.session.get(f"{api.base}/log/stream", headers=api.headers())
        assert r.status == 200
        stopping = asyncio.create_task(api.served.stop())
        async with asyncio.timeout(10):
            rest = await r.content.read()  # returns once the server closes the stream
            await stopping
        assert b"retry:" in rest or rest == b""
        r.release()


async def test_openapi_is_derived_from_the_query_and_patch_models(api: Api) -> None:
    async with api.session.get(f"{api.base}/openapi.json") as r:  # public, no token
        assert r.status == 200
        doc = await r.json()
    assert doc["openapi"] == "3.1.0"
    ders = doc["paths"]["/api/v1/ders"]["get"]
    params = {p["name"]: p for p in ders["parameters"]}
    assert set(params) == set(DiscoveryQuery.model_fields)
    assert "-max_capacity" in params["sort"]["schema"]["items"]["enum"]
    assert params["near"]["style"] == "form" and params["near"]["explode"] is False
    patch = doc["paths"]["/api/v1/ders/{device_id}"]["patch"]
    body_ref = patch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = doc["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert set(body_schema["properties"]) == {"availability", "dr_availability",
                                              "marketplace_availability", "device_name",
                                              "location"}
    assert {"412", "403", "404", "401"} <= set(patch["responses"])
    for path in ("/api/v1/vens", "/api/v1/vens/{ven_id}", "/api/v1/log",
                 "/api/v1/log/stream", "/api/v1/stats"):
        assert "get" in doc["paths"][path]


async def test_swagger_ui_is_served_without_a_cdn(api: Api) -> None:
    root = api.base.removesuffix("/v1")
    async with api.session.get(root + "/docs") as r:
        assert r.status == 200
        html = await r.text()
    assert "/api/v1/openapi.json" in html and "https://" not in html
    async with api.session.get(root + "/docs/static/swagger-ui-bundle.js") as r:
        assert r.status == 200 and len(await r.read()) > 100_000


def test_token_cli_issues_tokens_the_server_accepts(config: Config, tmp_path: Path) -> None:
    data_dir = str(config.data_dir)
    runner = CliRunner()
    result = runner.invoke(cli, ["token", "issue", "--role", "aggregator", "--aggregator",
                                 "A1", "--ttl", "60", "--data-dir", data_dir])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    key_file = config.data_dir / "api-dev-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = runner.invoke(cli, ["token", "issue", "--role", "service", "--data-dir", data_dir])
    assert again.exit_code == 0 and key_file.read_text()  # same key reused, not replaced
    bad = runner.invoke(cli, ["token", "issue", "--role", "prosumer", "--data-dir", data_dir])
    assert bad.exit_code != 0 and "account" in bad.output

    async def check() -> None:
        async with api_server(config) as api:
            await seed(api, [], [der("mine", "v1", aggregator_id="A1"),
                                 der("theirs", "v1", aggregator_id="A2")])
            async with api.session.get(
                api.base + "/ders", headers={"Authorization": f"Bearer {token}"}
            ) as r:
                assert r.status == 200
                assert [d["device_name"] for d in (await r.json())["items"]] == ["mine"]

    asyncio.run(check())


def _keys(tmp_path: Path, kind: str) -> tuple[Path, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key: Any = (ec.generate_private_key(ec.SECP256R1()) if kind == "ec"
                else rsa.generate_private_key(public_exponent=65537, key_size=2048))
    private = tmp_path / f"{kind}-private.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return private, key.public_key()


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
async def test_public_key_tokens_from_pem_or_jwks(tmp_path: Path, algorithm: str) -> None:
    import jwt
    from cryptography.hazmat.primitives import serialization

    from tests.conftest import free_port
    from vtn.config import load_config

    private, public = _keys(tmp_path, "ec" if algorithm == "ES256" else "rsa")
    overrides: dict[str, Any] = {"http.port": free_port(), "api.jwt_algorithm": algorithm,
                                 "api.jwt_private_key_file": str(private)}
    if algorithm == "ES256":  # a PEM public key file
        pem = tmp_path / "public.pem"
        pem.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo))
        overrides["api.jwt_public_key_file"] = str(pem)
    else:  # a JWKS file
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
        (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
        overrides["api.jwks_file"] = str(tmp_path / "jwks.json")
    config = load_config(None, data_dir=tmp_path / "data", **overrides)
    async with api_server(config) as api:
        token = api.token("service")
        if algorithm == "RS256":
            token = jwt.encode(jwt.decode(token, options={"verify_signature": False}),
                               private.read_bytes(), algorithm="RS256", headers={"kid": "k1"})
        async with api.session.get(api.base + "/stats",
                                   headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200
        # an HS256 token is refused: the algorithm is pinned to the configured one
        claims = {"sub": "x", "role": "service", "iss": "oadr-vtn", "aud": "oadr-vtn-api",
                  "exp": 4102444800}
        forged = jwt.encode(claims, "secret-key-32-bytes-long-0123456", algorithm="HS256")
        async with api.session.get(api.base + "/stats",
                                   headers={"Authorization": f"Bearer {forged}"}) as r:
            assert r.status == 401
    assert not (tmp_path / "data" / "api-dev-key").exists()


async def post_view(api: Api, body: Any, role: str = "aggregator", **claims: Any
                    ) -> tuple[int, Any]:
    async with api.session.post(api.base + "/views", json=body,
                                headers=api.headers(role, **claims)) as r:
        return r.status, await r.json(content_type=None)


async def test_saved_view_lists_its_ders_in_the_owner_scope(api: Api) -> None:
    ids = await fleet(api)
    lat, lon = CENTRE
    view = {"name": "dhw-5km", "filters": {
        "device_class": ["dhwDevice"], "near": [lat, lon], "radius_m": 5000,
        "marketplace_availability": True}}
    status, body = await post_view(api, view, aggregator_id="A1")
    assert status == 201, body
    assert body["aggregator_id"] == "A1" and body["filters"]["radius_m"] == 5000
    status, listed = await api.get("/views", "aggregator", aggregator_id="A1")
    assert [v["name"] for v in listed["items"]] == ["all", "dhw-5km"]  # default view first
    status, page = await api.get("/views/A1/dhw-5km/ders?sort=-max_capacity&fields=device_id",
                                 "aggregator", aggregator_id="A1")
    assert status == 200
    assert names(page, ids) == ["boiler-near", "boiler-mid"]  # not A2's boiler-far
    status, _ = await post_view(api, view, aggregator_id="A1")
    assert status == 409


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "filters": {"colour": "red"}}, "filters.colour"),
    ({"name": "x", "filters": {"device_class": ["toaster"]}}, "filters.device_class.0"),
    ({"name": "x", "filters": {"near": [52.5, 13.4]}}, "filters.radius_m"),
    ({"name": "x", "filters": {"sort": ["device_id"]}}, "filters.sort"),
    ({"name": "all"}, "name"),
    ({"name": "no spaces"}, "name"),
    ({"name": "x", "extra": 1}, "extra"),
])
async def test_bad_views_are_400_problems_naming_the_field(api: Api, body: Any,
                                                           field: str) -> None:
    status, problem = await post_view(api, body, aggregator_id="A1")
    assert status == 400, problem
    assert field in [e["field"] for e in problem["errors"]], problem
    status, listed = await api.get("/views", "aggregator", aggregator_id="A1")
    assert [v["name"] for v in listed["items"]] == ["all"]  # nothing stored
