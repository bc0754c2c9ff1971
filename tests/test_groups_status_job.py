"""The group status job: a group.status log entry (what the SSE stream carries) when a
group's roll-up changed, none while nothing changes, once across two processes."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import aiohttp

from registry.discovery import DerPatch, LogQuery
from registry.groups import create_group
from registry.models import Liveness, Ven
from registry.port import SERVICE, Batch, Scope
from tests.api_support import api_server, der
from vtn.config import Config
from vtn.group_jobs import publish_status
from vtn.services.base import Context


async def test_status_entries_on_change_only_once_and_in_the_owners_stream(
        config: Config) -> None:
    async with api_server(config) as api:
        store = api.served.vtn.store
        ders = [der(f"d{i}", "va", aggregator_id="A1", device_id=f"d{i}",
                    liveness=Liveness.ONLINE, available_capacity=100.0) for i in range(3)]
        await store.commit(Batch(vens=[Ven(ven_id="va", ven_name="osb", aggregator_id="A1")],
                                 ders=ders))
        group = await create_group(store, "A1", "evs", filters={}, actor="t",
                                   now=datetime.now(UTC))
        ctx = Context(store=store, config=config, clock=lambda: datetime.now(UTC))
        other = Context(store=store, config=config, clock=lambda: datetime.now(UTC))
        # two processes at once: the change is logged once
        assert sorted(await asyncio.gather(publish_status(ctx), publish_status(other))) == [0, 1]
        assert await publish_status(ctx) == 0  # nothing changed
        await store.patch_der("d1", DerPatch(dr_availability=False), SERVICE, actor="t")
        assert await publish_status(ctx) == 1
        entries = await store.find_log(LogQuery(kind=["group.status"]), SERVICE)
        assert [e.data["dr_available"] for e in entries] == [3, 2]
        assert entries[0].data["group_id"] == group.group_id
        assert entries[0].aggregator_id == "A1"
        # in the SSE stream of the owner, not of another aggregator
        assert await store.find_log(LogQuery(kind=["group.status"]),
                                    Scope("aggregator", aggregator_id="A2")) == []
        headers = api.headers("aggregator", aggregator_id="A1")
        async with aiohttp.ClientSession() as s, s.get(
                api.base + "/log/stream?kind=group.status", headers=headers,
                timeout=aiohttp.ClientTimeout(total=10)) as r:
            assert r.status == 200
            data = None
            async for line in r.content:
                if line.startswith(b"data:"):
                    data = json.loads(line[5:])
                    break
        assert data is not None and data["kind"] == "group.status"
