"""Aggregator VENs are offered their groups over EiReport exactly as views were: static
and mixed groups too, each as one METADATA report naming its members' rIDs; never a
service group or another tenant's. Real HTTP on loopback (TEST_STORE=mongo too)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from registry.models import Ven
from tests.api_support import Api, api_server, der, seed
from tests.test_views_limits import oadr, register
from vtn.codec import messages as m
from vtn.config import Config


@pytest.fixture
async def api(config: Config) -> AsyncIterator[Api]:
    async with api_server(config) as a:
        await seed(a, [Ven(ven_id="v1", ven_name="osb-1", aggregator_id="A1"),
                       Ven(ven_id="v2", ven_name="osb-2", aggregator_id="A2")],
                   [der(f"b{i}", "v1", aggregator_id="A1", device_id=f"b{i}")
                    for i in range(3)] + [der("x0", "v2", aggregator_id="A2", device_id="x0")])
        yield a


async def metadata(api: Api, ven_id: str) -> dict[str, list[str]]:
    """Poll the outbox empty: report name -> DER rIDs of the last METADATA offered."""
    out: dict[str, list[str]] = {}
    while not isinstance(msg := await oadr(api, "OadrPoll", m.Poll(ven_id=ven_id)), m.Response):
        if isinstance(msg, m.RegisterReport):
            out = {r.report_specifier_id: sorted(d.r_id for d in r.descriptions
                                                 if not d.r_id.startswith("agg."))
                   for r in msg.reports}
    return out


async def post(api: Api, body: dict, **claims: str) -> dict:
    async with api.session.post(f"{api.base}/groups", json=body,
                                headers=api.headers(**claims)) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def test_static_and_mixed_groups_are_offered_to_their_aggregator(api: Api) -> None:
    agg1 = (await register(api, "agg-1", "A1")).ven_id or ""
    assert await metadata(api, agg1) == {"all": ["b0", "b1", "b2"]}
    await post(api, {"name": "picked", "aggregator_id": "A1", "include": ["b2", "b0"]})
    await post(api, {"name": "most", "aggregator_id": "A1", "filters": {},
                     "exclude": ["b1"]})
    await post(api, {"name": "fleet", "filters": {}})  # the service's own: not offered
    await post(api, {"name": "theirs", "aggregator_id": "A2", "filters": {}})
    await api.served.vtn.views_gate.run(api.served.vtn.ctx)
    assert await metadata(api, agg1) == {"all": ["b0", "b1", "b2"], "most": ["b0", "b2"],
                                         "picked": ["b0", "b2"]}
    # a member change is re-announced at the next refresh
    async with api.session.post(f"{api.base}/groups/A1%2Fpicked/members", json={},
                                headers=api.headers()) as r:
        assert r.status == 404  # names are per owner: a service uses the id
    groups = {g["name"]: g["group_id"] for g in (await api.get("/groups"))[1]["items"]}
    async with api.session.post(f"{api.base}/groups/{groups['picked']}/members",
                                json={"remove": ["b2"]}, headers=api.headers()) as r:
        assert r.status == 200
    await api.served.vtn.views_gate.run(api.served.vtn.ctx)
    assert (await metadata(api, agg1))["picked"] == ["b0"]
