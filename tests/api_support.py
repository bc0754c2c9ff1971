"""Helpers for side API tests: a served VTN, tokens, DER fixtures written via store.commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from registry.api.auth import issue_token
from registry.models import Der, DeviceClass, Location, LogEntry, Ven
from registry.port import Batch
from tests.conftest import Served, serve
from vtn.config import Config


@dataclass
class Api:
    served: Served
    config: Config
    session: aiohttp.ClientSession

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.config.http.port}/api/v1"

    def token(self, role: str = "service", **claims: Any) -> str:
        return issue_token(self.config, role, **claims)

    def headers(self, role: str = "service", **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, **claims)}"}

    async def get(self, path: str, role: str = "service", **kw: Any) -> tuple[int, Any]:
        headers = {**self.headers(role, **claims_of(kw)), **kw.pop("headers", {})}
        async with self.session.get(self.base + path, headers=headers, **kw) as r:
            body = await r.json(content_type=None)
            return r.status, body

    async def patch(
        self, path: str, body: Any, role: str = "service", **kw: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = {**self.headers(role, **claims_of(kw)), **kw.pop("headers", {})}
        async with self.session.patch(self.base + path, json=body, headers=headers, **kw) as r:
            return r.status, await r.json(content_type=None), r


def claims_of(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: kw.pop(k) for k in ("aggregator_id", "account_id", "subject") if k in kw}


@asynccontextmanager
async def api_server(config: Config) -> AsyncIterator[Api]:
    served = await serve(config)
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(served, config, session)
    finally:
        await served.stop()


def der(
    name: str,
    ven_id: str,
    *,
    aggregator_id: str | None = None,
    account_id: str | None = None,
    device_class: DeviceClass = DeviceClass.OTHER,
    lat: float | None = None,
    lon: float | None = None,
    **fields: Any,
) -> Der:
    return Der(
        ven_id=ven_id,
        resource_id=name,
        device_name=name,
        aggregator_id=aggregator_id,
        account_id=account_id,
        device_class=device_class,
        location=Location(lat=lat, lon=lon) if lat is not None and lon is not None else None,
        **fields,
    )


async def seed(
    api: Api, vens: list[Ven], ders: list[Der], log: list[LogEntry] | None = None
) -> None:
    await api.served.vtn.store.commit(Batch(vens=vens, ders=ders, log=log or []))


def at(day: int) -> datetime:
    return datetime(2026, 11, day, 12, 0, tzinfo=UTC)
