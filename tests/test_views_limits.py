"""One aggregator's oversized view must not break views for anyone (issue #13, finding 8).

List filters are bounded (registry.limits.MAX_LIST_ITEMS) when a view is saved and in
every discovery query; a view stored before the bound (300,000 venIDs) is skipped with a
warning by the OpenADR side (offers, re-registration, the refresh job) instead of failing
it for every aggregator. Real HTTP on loopback, real app, real store (TEST_STORE=mongo).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from registry.group_model import Group
from registry.limits import MAX_LIST_ITEMS
from registry.models import Ven, VenRole
from registry.port import Batch
from tests.api_support import Api, api_server, der, seed
from vtn.codec import decode, encode
from vtn.codec import messages as m
from vtn.config import Config
from vtn.services.admin import provision_ven

HUGE = [f"ven-{i}" for i in range(300_000)]
TOO_MANY = ["v"] * 300_000  # fits the 2 MB body limit


@pytest.fixture
async def api(config: Config) -> AsyncIterator[Api]:
    async with api_server(config) as a:
        await seed(a, [Ven(ven_id="v1", ven_name="osb-1", aggregator_id="A1"),
                       Ven(ven_id="v2", ven_name="osb-2", aggregator_id="A2")],
                   [der("boiler-1", "v1", aggregator_id="A1"),
                    der("boiler-2", "v2", aggregator_id="A2")])
        yield a


async def oadr(api: Api, service: str, msg: m.Message) -> m.Message:
    async with api.session.post(f"{api.served.url}/{service}", data=encode(msg),
                                headers={"Content-Type": "application/xml"}) as r:
        assert r.status == 200, await r.text()
        return decode(await r.read())


async def register(api: Api, name: str, aggregator_id: str, ven_id: str | None = None
                   ) -> m.CreatedPartyRegistration:
    if ven_id is None:
        await provision_ven(api.served.vtn.ctx, name=name, aggregator_id=aggregator_id,
                            role=VenRole.AGGREGATOR)
    reply = await oadr(api, "EiRegisterParty", m.CreatePartyRegistration(
        request_id="r1", ven_name=name, ven_id=ven_id))
    assert isinstance(reply, m.CreatedPartyRegistration)
    return reply


async def offers(api: Api, ven_id: str) -> list[list[str]]:
    """Poll the outbox empty: the report names of each oadrRegisterReport received."""
    out = []
    while not isinstance(msg := await oadr(api, "OadrPoll", m.Poll(ven_id=ven_id)), m.Response):
        if isinstance(msg, m.RegisterReport):
            out.append([r.report_specifier_id for r in msg.reports])
    return out


async def post_view(api: Api, body: dict[str, Any]) -> tuple[int, Any]:
    async with api.session.post(f"{api.base}/views", json=body, headers=api.headers()) as r:
        return r.status, await r.json(content_type=None)


async def test_oversized_view_is_refused_and_a_stored_one_breaks_nobody(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    status, body = await post_view(api, {"name": "huge", "aggregator_id": "A1",
                                         "filters": {"ven_id": TOO_MANY}})
    assert status == 400 and "filters.ven_id" in [e["field"] for e in body["errors"]], body
    # at the bound it is accepted
    status, _ = await post_view(api, {"name": "wide", "aggregator_id": "A1",
                                      "filters": {"ven_id": HUGE[:MAX_LIST_ITEMS - 1] + ["v1"]}})
    assert status == 201

    agg1 = (await register(api, "agg-1", "A1")).ven_id or ""
    agg2 = (await register(api, "agg-2", "A2")).ven_id or ""
    assert await offers(api, agg1) == [["all", "wide"]] and await offers(api, agg2) == [["all"]]
    # a view stored before the bound existed
    store, vtn = api.served.vtn.store, api.served.vtn
    await store.commit(Batch(groups=[(Group(aggregator_id="A1", name="huge",
                                            filters={"ven_id": HUGE}), None)]))
    # reading its DERs is a 400 naming the filter, not a 500
    status, body = await api.get("/views/A1/huge/ders")
    assert status == 400 and "ven_id" in [e["field"] for e in body["errors"]], body
    status, body = await api.get("/views/A1/huge")
    assert status == 200 and len(body["filters"]["ven_id"]) == len(HUGE)

    # another aggregator's new view is still announced by the scheduled job
    status, _ = await post_view(api, {"name": "mine", "aggregator_id": "A2",
                                      "filters": {"ven_id": ["v2"]}})
    assert status == 201
    with caplog.at_level(logging.WARNING):
        await vtn.views_gate.run(vtn.ctx)
    assert await offers(api, agg2) == [["all", "mine"]]
    assert any("huge" in r.getMessage() for r in caplog.records)

    # the owner re-registers fine and is offered its other views
    again = await register(api, "agg-1", "A1", ven_id=agg1)
    assert again.response.code == 200, again.response
    assert await offers(api, agg1) == [["all", "wide"]]
    # and may still delete the bad view
    async with api.session.delete(f"{api.base}/views/A1/huge", headers=api.headers()) as r:
        assert r.status == 204


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/ders?ven_id=" + ",".join(TOO_MANY[: MAX_LIST_ITEMS + 1]), "ven_id"),
        ("/ders?liveness=" + ",".join(["x"] * (MAX_LIST_ITEMS + 1)), "liveness"),
        ("/log?kind=" + ",".join(["k"] * (MAX_LIST_ITEMS + 1)), "kind"),
    ],
)
async def test_list_filters_beyond_the_bound_are_400(api: Api, path: str, field: str) -> None:
    status, body = await api.get(path)
    assert status == 400 and field in [e["field"] for e in body["errors"]], body


async def test_list_filters_at_the_bound_work(api: Api) -> None:
    ids = ",".join([*(str(i) for i in range(MAX_LIST_ITEMS - 1)), "v2"])
    status, body = await api.get(f"/ders?ven_id={ids}&total=true")
    assert status == 200 and body["total"] == 1
    assert [d["ven_id"] for d in body["items"]] == ["v2"]
