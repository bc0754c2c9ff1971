"""OpenID Connect tokens (issue #19): RS256 tokens verified with a JWKS served by a real
local aiohttp server, claims mapped to roles by configuration; the FLEXCoop resource and
/api/v1 take them alike."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

import registry.api.jwks as jwks_module
from registry.models import Ven
from tests.api_support import Api, api_server, der, seed
from tests.conftest import free_port
from vtn.config import Config, load_config

ISSUER = "https://idp.flexcoop.test/realms/flexcoop"
AUDIENCE = "flexcoop-middleware"
ROLE_MAP = {"flexcoop-aggregator": "aggregator", "flexcoop-prosumer": "prosumer",
            "flexcoop-component": "service"}


class Idp:
    """A JWKS endpoint and the keys behind it."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {"k1": rsa.generate_private_key(65537, 2048)}
        self.fetches = 0

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            out.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": out}

    async def handle(self, _: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response(self.jwks())

    def token(self, kid: str = "k1", key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300,
                **claims}
        return jwt.encode(body, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
async def idp_api(config: Config, tmp_path: Path) -> AsyncIterator[tuple[Idp, Api]]:
    idp = Idp()
    app = web.Application()
    app.router.add_get("/certs", idp.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    overrides = {
        "http.port": config.http.port, "store.url": config.store.url,
        "api.jwt_algorithm": "RS256", "api.jwks_url": f"http://127.0.0.1:{port}/certs",
        "api.jwt_issuer": ISSUER, "api.jwt_audience": AUDIENCE,
        "api.role_claim": "realm_access.roles", "api.role_map": ROLE_MAP,
        "api.aggregator_claim": "aggregator", "api.account_claim": "account",
    }
    cfg = load_config(None, data_dir=config.data_dir, **overrides)
    try:
        async with api_server(cfg) as api:
            await seed(api, [Ven(ven_id="v1", ven_name="osb-1")], [
                der("mine", "v1", aggregator_id="agg-a", account_id="acct-1"),
                der("theirs", "v1", aggregator_id="agg-b", account_id="acct-2"),
            ])
            yield idp, api
    finally:
        await runner.cleanup()


async def names(api: Api, token: str) -> tuple[int, Any]:
    url = api.base.removesuffix("/v1") + "/flexcoop/devices"
    async with api.session.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
        body = await r.json(content_type=None)
        if r.status != 200:
            return r.status, body
        return r.status, sorted(d["device_name"] for d in body["_items"])


async def test_oidc_roles_from_claims(idp_api: tuple[Idp, Api]) -> None:
    idp, api = idp_api
    assert idp.fetches == 1  # at startup
    agg = idp.token(realm_access={"roles": ["offline_access", "flexcoop-aggregator"]},
                    aggregator="agg-a")
    assert await names(api, agg) == (200, ["mine"])
    pro = idp.token(realm_access={"roles": ["flexcoop-prosumer"]}, account="acct-2")
    assert await names(api, pro) == (200, ["theirs"])
    svc = idp.token(realm_access={"roles": ["flexcoop-component"]})
    assert await names(api, svc) == (200, ["mine", "theirs"])
    async with api.session.get(api.base + "/ders",
                               headers={"Authorization": f"Bearer {agg}"}) as r:
        body = await r.json()
        assert r.status == 200 and [d["device_name"] for d in body["items"]] == ["mine"]
    assert idp.fetches == 1


@pytest.mark.parametrize("case", ["unmapped", "no-aggregator", "wrong-key", "hs256", "aud"])
async def test_oidc_refusals(idp_api: tuple[Idp, Api], case: str) -> None:
    idp, api = idp_api
    roles = {"realm_access": {"roles": ["flexcoop-aggregator"]}, "aggregator": "agg-a"}
    token = {
        "unmapped": lambda: idp.token(realm_access={"roles": ["aggregator"]}),
        "no-aggregator": lambda: idp.token(realm_access={"roles": ["flexcoop-aggregator"]}),
        "wrong-key": lambda: idp.token(key=rsa.generate_private_key(65537, 2048), **roles),
        "hs256": lambda: jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x",
                                     "exp": int(time.time()) + 60, **roles},
                                    "secret" * 8, algorithm="HS256", headers={"kid": "k1"}),
        "aud": lambda: idp.token(aud="someone-else", **roles),
    }[case]()
    status, body = await names(api, token)
    assert status == 401 and body["_error"]["code"] == 401


async def test_key_rotation_refetches_once(idp_api: tuple[Idp, Api],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    idp, api = idp_api
    idp.keys["k2"] = rsa.generate_private_key(65537, 2048)
    token = idp.token("k2", realm_access={"roles": ["flexcoop-component"]})
    # within the refresh interval an unknown kid is not refetched (no hammering)
    assert (await names(api, token))[0] == 401 and idp.fetches == 1
    monkeypatch.setattr(jwks_module, "MIN_REFRESH_S", 0.0)
    assert await names(api, token) == (200, ["mine", "theirs"])
    assert idp.fetches == 2
