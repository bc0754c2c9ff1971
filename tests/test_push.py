"""HTTP push end to end: a real VTN drains the durable outbox of push VENs by POSTing to
real loopback servers, handles their synchronous replies, retries when they are down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from registry.event_manager import create_event
from registry.events import DrEvent
from registry.port import SERVICE
from tests.conftest import make_vtn
from tests.oadr import call
from tests.push_support import PushVen, allow_loopback_push
from tests.test_interop_openleadr import eventually
from vtn.app import Vtn
from vtn.codec import messages as m
from vtn.config import Config
from vtn.services import admin


@pytest.fixture
async def pushing(config: Config) -> AsyncIterator[Vtn]:
    """A VTN with its jobs (the push drainer among them) and a real clock."""
    allow_loopback_push(config)
    vtn = make_vtn(config, run_jobs=True)
    await vtn.start()
    yield vtn
    await vtn.stop()


async def register_push(vtn: Vtn, ven: PushVen, name: str) -> str:
    await admin.provision_ven(vtn.ctx, name=name)
    reply = await call(vtn, "EiRegisterParty", m.CreatePartyRegistration(
        request_id="r", ven_name=name, http_pull_model=False, transport_address=ven.url(name)))
    assert isinstance(reply, m.CreatedPartyRegistration) and reply.response.code == 200
    assert reply.ven_id
    ven.ven_ids[name] = reply.ven_id
    return reply.ven_id


def event_for(*ven_ids: str) -> DrEvent:
    return DrEvent(
        program="http://dr.example/programs/peak",
        dtstart=datetime.now(UTC) + timedelta(minutes=30), duration_s=3600,
        signals=[{"signal_name": "SIMPLE", "signal_type": "level",
                  "intervals": [{"duration_s": 3600, "value": 2}]}],
        targets={"ven_ids": list(ven_ids)},
    )


async def test_queued_messages_are_pushed_and_the_replies_recorded(pushing: Vtn) -> None:
    ven = PushVen()
    await ven.start()
    try:
        ven_id = await register_push(pushing, ven, "push-1")
        # registration queues oadrRegisterReport: pushed, answered with oadrRegisteredReport
        await ven.wait_for(lambda: "oadrRegisterReport" in ven.kinds("push-1"))
        event, _ = await create_event(pushing.store, event_for(ven_id), SERVICE,
                                      actor="test", now=datetime.now(UTC))
        await ven.wait_for(lambda: "oadrDistributeEvent" in ven.kinds("push-1"))

        async def opted() -> bool:
            d = await pushing.store.get_delivery(event.event_id, ven_id)
            return d is not None and d.opt == "optIn"
        await eventually(opted)
        sent = [x for x in ven.received["push-1"] if isinstance(x, m.DistributeEvent)]
        assert [e.event_id for e in sent[0].events] == [event.event_id]
        assert sent[0].events[0].target.ven_ids == [ven_id]
        await eventually(lambda: _empty(pushing, ven_id))
        # a push VEN's acknowledged delivery is contact
        v = await pushing.store.get_ven(ven_id)
        assert v is not None and v.liveness == "online"
        assert pushing.push is not None and pushing.push.delivered >= 2
    finally:
        await ven.stop()


async def test_target_down_for_a_while_gets_the_message_once_when_back(pushing: Vtn) -> None:
    ven = PushVen()
    await ven.start()
    ven_id = await register_push(pushing, ven, "push-2")
    await ven.wait_for(lambda: "oadrRegisterReport" in ven.kinds("push-2"))
    await ven.stop()  # connections refused from now on
    event, _ = await create_event(pushing.store, event_for(ven_id), SERVICE,
                                  actor="test", now=datetime.now(UTC))
    drainer = pushing.push
    assert drainer is not None
    failed = drainer.failures
    await eventually(lambda: _true(drainer.failures >= failed + 2))  # retried, backing off
    assert await pushing.store.pending_count(ven_id) == 1  # still owed
    await ven.start()  # the same port again
    await ven.wait_for(lambda: "oadrDistributeEvent" in ven.kinds("push-2"))
    await eventually(lambda: _empty(pushing, ven_id))
    got = [x for x in ven.received["push-2"] if isinstance(x, m.DistributeEvent)]
    assert len(got) == 1 and [e.event_id for e in got[0].events] == [event.event_id]
    d = await pushing.store.get_delivery(event.event_id, ven_id)
    assert d is not None and d.opt == "optIn"
    await ven.stop()


async def test_a_ven_answering_503_is_retried_and_nothing_is_lost(pushing: Vtn) -> None:
    ven = PushVen(refuse=True)
    await ven.start()
    try:
        ven_id = await register_push(pushing, ven, "push-3")
        drainer = pushing.push
        assert drainer is not None
        await eventually(lambda: _true(drainer.failures >= 2))
        assert await pushing.store.pending_count(ven_id) == 1
        ven.refuse = False
        await ven.wait_for(lambda: ven.kinds("push-3") == ["oadrRegisterReport"])
        await eventually(lambda: _empty(pushing, ven_id))
        assert ven.kinds("push-3") == ["oadrRegisterReport"]
    finally:
        await ven.stop()


async def _empty(vtn: Vtn, ven_id: str) -> bool:
    return await vtn.store.pending_count(ven_id) == 0


async def _true(value: bool) -> bool:
    return value
