"""Delivery over XMPP end to end: a served VTN (jobs on, [xmpp] enabled) on a real
Prosody; events created through the API reach pull, push and XMPP VENs of one fleet;
the XMPP server restarts and nothing is lost or seen twice as new."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.conftest import Served, serve
from tests.push_support import PushVen, allow_loopback_push, answer
from tests.test_ven_sim_events_e2e import Api
from tests.xmpp_server import ProsodyServer
from tests.xmpp_support import eventually, prosody, prosody_or_skip, ven_link, xmpp_config
from ven_sim.link import HttpLink
from ven_sim.stats import Stats
from ven_sim.xmpp_link import XmppLink
from vtn.codec import messages as m
from vtn.config import Config

__all__ = ["prosody"]
REG, EVENT = "EiRegisterParty", "EiEvent"


def prepare(config: Config, server: ProsodyServer) -> Config:
    config.registration.open_enrollment = True
    allow_loopback_push(config)
    config.xmpp = xmpp_config(server, retry_max_s=0.5)
    return config


@pytest.fixture
async def served(config: Config, prosody: ProsodyServer) -> AsyncIterator[Served]:
    s = await serve(prepare(config, prosody), run_jobs=True)
    yield s
    await s.stop()


class XmppVen:
    """An XMPP VEN that answers what the VTN pushes the way a 2.0b VEN does (optIn)."""

    def __init__(self, link: XmppLink) -> None:
        self.link = link
        self.ven_id = ""
        self.received: list[m.Message] = []
        self.handled = 0  # pushes whose answer has had the VTN's reply (or failed)
        link.on_message = self._on_message

    async def register(self, name: str) -> str:
        reply = await self.link.send(REG, m.CreatePartyRegistration("r", ven_name=name))
        assert isinstance(reply, m.CreatedPartyRegistration), reply
        assert reply.response.code == m.OK and reply.ven_id, reply.response
        self.ven_id = reply.ven_id
        return reply.ven_id

    async def _on_message(self, link: XmppLink, msg: m.Message) -> None:
        self.received.append(msg)
        try:
            back = await link.send(EVENT, answer(msg, self.ven_id))
            assert back is not None and getattr(back, "response", None) is not None
        finally:
            self.handled += 1

    async def settle(self) -> None:
        """Wait until every push received so far has been answered: the API can show an
        opt recorded before the VTN's reply reached the VEN, and closing the link then
        would cut that reply off."""
        await eventually(lambda: self.handled >= len(self.received), timeout_s=20)

    def events(self) -> list[tuple[str, int]]:
        return [(e.event_id, e.modification_number) for d in self.received
                if isinstance(d, m.DistributeEvent) for e in d.events]


def signals() -> list[dict[str, Any]]:
    return [{"signal_name": "SIMPLE", "signal_type": "level",
             "intervals": [{"duration_s": 600, "value": 2}]}]


async def create_event(api: Api, event_id: str, ven_ids: list[str]) -> None:
    status, doc = await api.call("POST", "/events", {
        "event_id": event_id, "program": "xmpp-test", "signals": signals(),
        "dtstart": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
        "targets": {"ven_ids": ven_ids}})
    assert status == 201, doc


async def answered(api: Api, event_id: str, vens: int) -> dict[str, str]:
    """venID -> recorded response, once every delivery of the event has its answer."""
    doc: dict[str, Any] = {}

    async def check() -> bool:
        doc.update(await api.get(f"/events/{event_id}"))
        return len(doc["deliveries"]) == vens and all(
            d["opt_mod"] == 0 for d in doc["deliveries"])

    await eventually(check, timeout_s=60, every_s=0.1)
    return {d["ven_id"]: d["response"] for d in doc["deliveries"]}


async def test_one_event_reaches_pull_push_and_xmpp_vens_and_all_answers_are_recorded(
        served: Served, config: Config, prosody: ProsodyServer) -> None:
    vtn = served.vtn
    push = PushVen()
    await push.start()
    xmpp = XmppVen(await ven_link(prosody))
    stats = Stats()
    try:
        async with aiohttp.ClientSession() as session:
            pull = HttpLink(session, served.url, stats, validate=True)
            reg = await pull.send(REG, m.CreatePartyRegistration("p", ven_name="pull-1"))
            assert isinstance(reg, m.CreatedPartyRegistration) and reg.ven_id
            pull_id = reg.ven_id
            reg = await pull.send(REG, m.CreatePartyRegistration(
                "h", ven_name="push-1", http_pull_model=False,
                transport_address=push.url("push-1")))
            assert isinstance(reg, m.CreatedPartyRegistration) and reg.ven_id, reg
            push.ven_ids["push-1"] = push_id = reg.ven_id
            xmpp_id = await xmpp.register("xmpp-1")
            stored = await vtn.store.get_ven(xmpp_id)
            assert stored is not None and stored.transport_name == "xmpp"
            assert stored.transport_address == xmpp.link.jid
            assert stored.fingerprint == f"xmpp:{xmpp.link.client.boundjid.bare}"

            api = Api(config, session)
            await create_event(api, "peak-1", [pull_id, push_id, xmpp_id])
            # the pull VEN polls it and answers; push and XMPP VENs get it pushed
            for _ in range(50):
                got = await pull.send("OadrPoll", m.Poll(ven_id=pull_id))
                if isinstance(got, m.DistributeEvent) and got.events:
                    reply = answer(got, pull_id)
                    assert await pull.send(EVENT, reply) is not None
                    break
                if isinstance(got, m.RegisterReport):
                    await pull.send("EiReport", answer(got, pull_id))
                await asyncio.sleep(0.1)
            responses = await answered(api, "peak-1", 3)
            await xmpp.settle()
    finally:
        await xmpp.link.close()
        await push.stop()
    assert responses == {pull_id: "optIn", push_id: "optIn", xmpp_id: "optIn"}
    assert ("peak-1", 0) in xmpp.events()
    assert "oadrDistributeEvent" in push.kinds("push-1")
    assert xmpp.link.stats.errors == {}  # every pushed payload decoded and XSD-valid
    assert stats.errors == {}


async def test_another_account_cannot_answer_for_an_xmpp_ven(
        served: Served, prosody: ProsodyServer) -> None:
    owner = XmppVen(await ven_link(prosody))
    other = await ven_link(prosody)
    try:
        ven_id = await owner.register("xmpp-owner")
        reply = await other.send(EVENT, m.RequestEvent("x", ven_id))
    finally:
        await owner.link.close()
        await other.close()
    assert isinstance(reply, m.DistributeEvent)
    assert reply.response.code == m.NOT_REGISTERED_OR_AUTHORIZED


async def test_server_restart_vtn_reconnects_nothing_lost_nothing_new_twice(
        config: Config) -> None:
    prosody_or_skip()
    server = ProsodyServer()
    server.add_account("vtn", "vtn-secret")
    server.start()
    served = await serve(prepare(config, server), run_jobs=True)
    transport = served.vtn.xmpp
    assert transport is not None
    ven = XmppVen(await ven_link(server))
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(config, session)
            ven_id = await ven.register("xmpp-r")
            await create_event(api, "before", [ven_id])
            assert await answered(api, "before", 1) == {ven_id: "optIn"}

            server.stop()  # every session drops
            await eventually(lambda: not transport.online.is_set())
            await create_event(api, "during", [ven_id])  # queued: nobody to send it to
            await asyncio.sleep(1.0)  # deliveries fail meanwhile (no XMPP session)
            server.start()
            await eventually(lambda: transport.sessions >= 2, timeout_s=20)
            assert await answered(api, "during", 1) == {ven_id: "optIn"}
            assert await answered(api, "before", 1) == {ven_id: "optIn"}
            assert await served.vtn.store.pending_count(ven_id) == 0
            await ven.settle()
    finally:
        await ven.link.close()
        await served.stop()
        server.cleanup()
    seen = ven.events()
    # nothing lost: both events arrived; nothing new twice: every event only ever at
    # modificationNumber 0, and "during" first arrived after the restart
    assert {e for e, _ in seen} == {"before", "during"}
    assert all(mod == 0 for _, mod in seen)
    assert ven.link.stats.errors.get("decode", 0) == 0
