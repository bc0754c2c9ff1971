"""DR events over OpenADR: our codec as a VEN through the real engine, and openleadr's own
OpenADRClient over real HTTP. Every reply the engine emits is XSD-checked by the fixture."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from registry.event_manager import EventError, cancel_event, create_event, modify_event
from registry.events import DrEvent
from registry.port import SERVICE, Scope
from tests.conftest import FakeClock, serve
from tests.oadr import call, metadata, register
from tests.test_interop_openleadr import eventually, fast, make_client
from vtn import event_jobs
from vtn.app import Vtn
from vtn.codec import messages as m
from vtn.config import Config
from vtn.services.admin import provision_ven


def simple_event(clock: FakeClock, **targets: list[str]) -> DrEvent:
    return DrEvent(
        program="http://dr.example/programs/peak",
        dtstart=clock() + timedelta(minutes=30),
        duration_s=3600,
        signals=[{"signal_name": "SIMPLE", "signal_type": "level",
                  "intervals": [{"duration_s": 1800, "value": 1},
                                {"duration_s": 1800, "value": 2}]}],
        targets=targets,
        ramp_up_s=600,
    )


async def osb(vtn: Vtn, name: str, resources: list[str], **provision: str) -> str:
    reg = await register(vtn, name, **provision)
    assert reg.ven_id is not None
    reply = await call(vtn, "EiReport", metadata(reg.ven_id, {r: "Water_Heater"
                                                               for r in resources}))
    assert isinstance(reply, m.RegisteredReport)
    return reg.ven_id


async def drain(vtn: Vtn, ven_id: str) -> list[m.Message]:
    """Poll until oadrResponse; the messages the VEN received on the way."""
    got: list[m.Message] = []
    for _ in range(20):
        reply = await call(vtn, "OadrPoll", m.Poll(ven_id=ven_id))
        if isinstance(reply, m.Response):
            return got
        got.append(reply)
    raise AssertionError("the outbox never emptied")


def distributes(msgs: list[m.Message]) -> list[m.DistributeEvent]:
    return [x for x in msgs if isinstance(x, m.DistributeEvent)]


async def test_distribute_on_poll_carries_only_the_vens_own_ids(vtn: Vtn, clock: FakeClock
                                                               ) -> None:
    a = await osb(vtn, "osb-a", ["boiler", "hp"], aggregator_id="agg-1")
    b = await osb(vtn, "osb-b", ["boiler"], aggregator_id="agg-1")
    await drain(vtn, a)
    await drain(vtn, b)
    ders_a = await vtn.store.ders_of_ven(a)
    boiler_a = next(d for d in ders_a if d.resource_id == "boiler")
    event, deliveries = await create_event(
        vtn.store, simple_event(clock, ven_ids=[b], device_ids=[boiler_a.device_id]),
        SERVICE, actor="test", now=clock())
    assert {d.ven_id for d in deliveries} == {a, b}
    got_a = distributes(await drain(vtn, a))
    assert len(got_a) == 1 and len(got_a[0].events) == 1
    wire = got_a[0].events[0]
    assert wire.event_id == event.event_id and wire.modification_number == 0
    assert wire.target.ven_ids == [a] and wire.target.resource_ids == ["boiler"]
    assert wire.event_status == "far"
    assert [iv.value for iv in wire.signals[0].intervals] == [1.0, 2.0]
    got_b = distributes(await drain(vtn, b))
    assert got_b[0].events[0].target.ven_ids == [b]
    assert got_b[0].events[0].target.resource_ids == ["boiler"]
    # oadrRequestEvent answers the same current events
    again = await call(vtn, "EiEvent", m.RequestEvent(request_id="rq-1", ven_id=a))
    assert isinstance(again, m.DistributeEvent)
    assert [e.event_id for e in again.events] == [event.event_id]
    assert again.response is not None and again.response.request_id == "rq-1"


async def test_created_event_records_answers_and_refuses_unknown_or_stale(
    vtn: Vtn, clock: FakeClock
) -> None:
    ven = await osb(vtn, "osb-c", ["boiler"])
    await drain(vtn, ven)
    event, _ = await create_event(vtn.store, simple_event(clock, ven_ids=[ven]), SERVICE,
                                  actor="test", now=clock())
    await drain(vtn, ven)

    def answer(event_id: str, mod: int, opt: str = "optIn") -> m.CreatedEvent:
        return m.CreatedEvent(
            response=m.EiResponse(request_id=""), ven_id=ven,
            event_responses=[m.EventResponse(m.EiResponse(request_id="d-1"), event_id, mod,
                                             opt)])

    reply = await call(vtn, "EiEvent", answer(event.event_id, 0))
    assert isinstance(reply, m.Response) and reply.response.code == 200
    d = await vtn.store.get_delivery(event.event_id, ven)
    assert d is not None and d.opt == "optIn" and d.opt_mod == 0 and d.delivered_mod == 0
    bad = await call(vtn, "EiEvent", answer("no-such-event", 0))
    assert isinstance(bad, m.Response) and bad.response.code == m.INVALID_ID
    await modify_event(vtn.store, event.event_id, {"vtn_comment": "deeper"}, SERVICE,
                       actor="test", now=clock())
    stale = await call(vtn, "EiEvent", answer(event.event_id, 0, "optOut"))
    assert isinstance(stale, m.Response) and stale.response.code == m.OUT_OF_SEQUENCE
    d = await vtn.store.get_delivery(event.event_id, ven)
    assert d is not None and d.opt == "optIn"  # the refused answer changed nothing
    later = await call(vtn, "EiEvent", answer(event.event_id, 1, "optOut"))
    assert isinstance(later, m.Response) and later.response.code == 200
    d = await vtn.store.get_delivery(event.event_id, ven)
    assert d is not None and d.opt == "optOut" and d.opt_mod == 1


async def test_modify_cancel_and_implicit_cancel_reach_the_ven(vtn: Vtn, clock: FakeClock
                                                              ) -> None:
    a = await osb(vtn, "osb-d", ["boiler"])
    b = await osb(vtn, "osb-e", ["boiler"])
    await drain(vtn, a)
    await drain(vtn, b)
    one, _ = await create_event(vtn.store, simple_event(clock, ven_ids=[a, b]), SERVICE,
                                actor="test", now=clock())
    two, _ = await create_event(vtn.store, simple_event(clock, ven_ids=[a]), SERVICE,
                                actor="test", now=clock())
    got = distributes(await drain(vtn, a))
    assert len(got) == 1  # one marker per VEN: both events in one distribute
    assert sorted(e.event_id for e in got[0].events) == sorted([one.event_id, two.event_id])
    # b is dropped from event one: its next distribute no longer lists it (implicit cancel)
    await modify_event(vtn.store, one.event_id, {"targets": {"ven_ids": [a]}}, SERVICE,
                       actor="test", now=clock())
    got_b = distributes(await drain(vtn, b))
    assert len(got_b) == 1 and got_b[0].events == []
    got_a = distributes(await drain(vtn, a))
    mods = {e.event_id: e.modification_number for e in got_a[0].events}
    assert mods == {one.event_id: 1, two.event_id: 0}
    await cancel_event(vtn.store, two.event_id, SERVICE, actor="test", now=clock())
    got_a = distributes(await drain(vtn, a))
    status = {e.event_id: (e.event_status, e.modification_number) for e in got_a[0].events}
    assert status == {one.event_id: ("far", 1), two.event_id: ("cancelled", 1)}
    # an hour and a half later both are gone from what the VEN is told
    clock.advance(2 * 3600)
    again = await call(vtn, "EiEvent", m.RequestEvent(request_id="rq", ven_id=a))
    assert isinstance(again, m.DistributeEvent) and again.events == []


async def test_aggregator_cannot_target_another_tenants_ders(vtn: Vtn, clock: FakeClock
                                                            ) -> None:
    mine = await osb(vtn, "osb-f", ["boiler"], aggregator_id="agg-1")
    theirs = await osb(vtn, "osb-g", ["boiler"], aggregator_id="agg-2")
    their_der = (await vtn.store.ders_of_ven(theirs))[0]
    agg1 = Scope(role="aggregator", aggregator_id="agg-1")
    for targets in ({"device_ids": [their_der.device_id]}, {"ven_ids": [theirs]},
                    {"ven_ids": [mine, theirs]}):
        try:
            await create_event(vtn.store, simple_event(clock, **targets), agg1, actor="agg",
                               now=clock())
        except EventError as exc:
            assert "not in your scope" in exc.detail
        else:
            raise AssertionError(f"{targets} was accepted")
    assert distributes(await drain(vtn, theirs)) == []
    ok_event, deliveries = await create_event(vtn.store, simple_event(clock, ven_ids=[mine]),
                                              agg1, actor="agg", now=clock())
    assert [d.ven_id for d in deliveries] == [mine]
    assert await vtn.store.get_event(ok_event.event_id,
                                     Scope(role="aggregator", aggregator_id="agg-2")) is None


async def test_opt_schedule_and_event_opt(vtn: Vtn, clock: FakeClock) -> None:
    ven = await osb(vtn, "osb-h", ["boiler", "hp"])
    await drain(vtn, ven)
    event, _ = await create_event(vtn.store, simple_event(clock, ven_ids=[ven]), SERVICE,
                                  actor="test", now=clock())
    await drain(vtn, ven)
    start = clock() + timedelta(minutes=30)
    sched = m.CreateOpt(opt_id="opt-1", opt_type="optOut", opt_reason="participating",
                        request_id="o-1", ven_id=ven, created_date_time=clock(),
                        resource_ids=["hp"], availability=[(start, timedelta(hours=1))])
    reply = await call(vtn, "EiOpt", sched)
    assert isinstance(reply, m.CreatedOpt) and reply.response.code == 200
    assert reply.opt_id == "opt-1"
    stored = await vtn.store.get_opt(ven, "opt-1")
    assert stored is not None and stored.windows[0].start == start
    # an opt for the event, for one resource, overrides the event-level answer there
    ev_opt = m.CreateOpt(opt_id="opt-2", opt_type="optOut", opt_reason="notParticipating",
                         request_id="o-2", ven_id=ven, created_date_time=clock(),
                         event_id=event.event_id, modification_number=0,
                         resource_ids=["boiler"])
    reply = await call(vtn, "EiOpt", ev_opt)
    assert isinstance(reply, m.CreatedOpt) and reply.response.code == 200
    d = await vtn.store.get_delivery(event.event_id, ven)
    assert d is not None and d.resource_opts == {"boiler": "optOut"}
    # both a schedule and an event, or someone else's resource: refused, nothing stored
    both = m.CreateOpt(opt_id="opt-3", opt_type="optOut", opt_reason="economic", request_id="o-3",
                       ven_id=ven, created_date_time=clock(), event_id=event.event_id,
                       modification_number=0, availability=[(start, timedelta(hours=1))])
    reply = await call(vtn, "EiOpt", both)
    assert isinstance(reply, m.CreatedOpt) and reply.response.code == m.INVALID_DATA
    foreign = m.CreateOpt(opt_id="opt-4", opt_type="optOut", opt_reason="economic",
                          request_id="o-4", ven_id=ven, created_date_time=clock(),
                          resource_ids=["not-mine"], availability=[(start, timedelta(hours=1))])
    reply = await call(vtn, "EiOpt", foreign)
    assert isinstance(reply, m.CreatedOpt) and reply.response.code == m.TARGET_MISMATCH
    assert await vtn.store.get_opt(ven, "opt-3") is None
    assert await vtn.store.get_opt(ven, "opt-4") is None
    cancelled = await call(vtn, "EiOpt", m.CancelOpt(request_id="c-1", opt_id="opt-1",
                                                      ven_id=ven))
    assert isinstance(cancelled, m.CanceledOpt) and cancelled.response.code == 200
    again = await call(vtn, "EiOpt", m.CancelOpt(request_id="c-2", opt_id="opt-1",
                                                  ven_id=ven))
    assert isinstance(again, m.CanceledOpt) and again.response.code == m.INVALID_ID


async def test_openleadr_client_gets_events_answers_and_sees_changes(config: Config) -> None:
    fast(config)
    logging.getLogger("openleadr").setLevel(logging.ERROR)
    served = await serve(config)
    ven = await provision_ven(served.vtn.ctx, name="osb-ol-ev")
    client = make_client(served.url, "osb-ol-ev")
    fresh: list[dict] = []
    updated: list[dict] = []

    async def on_event(event: dict) -> str:
        fresh.append(event)
        return "optIn"

    async def on_update_event(event: dict) -> str:
        updated.append(event)
        return "optOut"

    client.add_handler("on_event", on_event)
    client.add_handler("on_update_event", on_update_event)
    await client.run()
    store = served.vtn.store
    try:
        async def registered_ders() -> bool:
            return len(await store.ders_of_ven(ven.ven_id)) == 2

        await eventually(registered_ders)
        clock = FakeClock(datetime.now(UTC))  # the served VTN runs on real time
        event, _ = await create_event(store, simple_event(clock, ven_ids=[ven.ven_id]),
                                      SERVICE, actor="test", now=clock())

        async def opted(opt: str, mod: int) -> bool:
            d = await store.get_delivery(event.event_id, ven.ven_id)
            return d is not None and d.opt == opt and d.opt_mod == mod

        await eventually(lambda: opted("optIn", 0))
        got = fresh[0]
        assert got["event_descriptor"]["event_id"] == event.event_id
        assert {"ven_id": ven.ven_id} in got["targets"]
        assert got["event_signals"][0]["signal_name"] == "SIMPLE"
        await modify_event(store, event.event_id, {"signals": [
            {"signal_name": "SIMPLE", "signal_type": "level",
             "intervals": [{"duration_s": 3600, "value": 3}]}]}, SERVICE, actor="test",
            now=clock())
        await eventually(lambda: opted("optOut", 1))
        assert updated[-1]["event_signals"][0]["intervals"][0]["signal_payload"] == 3.0
        await cancel_event(store, event.event_id, SERVICE, actor="test", now=clock())

        async def saw_cancel() -> bool:
            return any(e["event_descriptor"]["event_status"] == "cancelled" for e in updated)

        await eventually(saw_cancel)
    finally:
        await client.stop()
        await served.stop()


async def test_status_job_logs_each_transition_once_and_redistributes(
    vtn: Vtn, clock: FakeClock
) -> None:
    ven = await osb(vtn, "osb-i", ["boiler"])
    await drain(vtn, ven)
    event, _ = await create_event(vtn.store, simple_event(clock, ven_ids=[ven]), SERVICE,
                                  actor="test", now=clock())
    await drain(vtn, ven)
    clock.advance(25 * 60)  # inside the 10-minute ramp-up window
    assert await event_jobs.tick(vtn.ctx) == [(event.event_id, "far", "near")]
    assert await event_jobs.tick(vtn.ctx) == []  # a second process finds nothing to do
    got = distributes(await drain(vtn, ven))
    assert got[0].events[0].event_status == "near"
    assert got[0].events[0].signals[0].current_value == 0.0
    clock.advance(10 * 60)
    assert await event_jobs.tick(vtn.ctx) == [(event.event_id, "near", "active")]
    got = distributes(await drain(vtn, ven))
    assert got[0].events[0].event_status == "active"
    assert got[0].events[0].signals[0].current_value == 1.0
    clock.advance(3600)
    assert await event_jobs.tick(vtn.ctx) == [(event.event_id, "active", "completed")]
    logged = [e for e in await vtn.store.read_log(0, 1000) if e.kind == "event.status"]
    assert [(e.data["from"], e.data["to"]) for e in logged] == [
        ("far", "near"), ("near", "active"), ("active", "completed")]
    assert await vtn.store.open_events() == []
