"""Simulated OSBs and DR events, over real HTTP: a minimal VTN stand-in (an aiohttp app
written here) answers the OSB in sequence, delivers encoded oadrDistributeEvents and
XSD-validates every message the OSB sends. The OSB runs on simulated time (Env.now),
so report intervals before and during an event come within a few steps."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import free_port
from ven_sim.devices import BATTERY, EVSE, HEAT_PUMP, LIGHTING, PV, WATER_HEATER, Der, Kind
from ven_sim.events import OsbEvents, der_busy, household_busy, name_seed
from ven_sim.link import OADR_PATH, HttpLink
from ven_sim.osb import USAGE_SPEC, Osb
from ven_sim.scenario import Scenario
from ven_sim.session import Env
from ven_sim.stats import Stats
from ven_sim.view import render
from vtn.codec import decode, encode, validate
from vtn.codec import messages as m

# 14:13 local solar time at 13.4 degE on a January afternoon: heat pumps run, no comfort
# window, batteries charge
T0 = datetime(2026, 1, 15, 13, 20, tzinfo=UTC)
LON = 13.4
VEN_ID = "ven-1"


def ok(rid: str = "") -> m.EiResponse:
    return m.EiResponse(m.OK, "OK", rid)


class StandIn:
    """The VTN side of one OSB's session, scripted: what it received, what to deliver."""

    def __init__(self, ders: tuple[Der, ...]) -> None:
        self.ders = ders
        self.received: list[m.Message] = []
        self.invalid: list[str] = []
        self.on_request: m.DistributeEvent = distribute("req-0")
        self.queue: list[m.Message] = []  # delivered one per oadrPoll

    def of(self, cls: type) -> list:  # type: ignore[type-arg]
        return [x for x in self.received if isinstance(x, cls)]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            validate(body)
        except Exception as exc:  # noqa: BLE001 - recorded, asserted by the tests
            self.invalid.append(f"{request.match_info['service']}: {exc}")
        msg = decode(body, validate=False)
        self.received.append(msg)
        return web.Response(body=encode(self.answer(msg)), content_type="application/xml")

    def answer(self, msg: m.Message) -> m.Message:
        if isinstance(msg, m.QueryRegistration):
            return m.CreatedPartyRegistration(ok(msg.request_id), vtn_id="vtn-test")
        if isinstance(msg, m.CreatePartyRegistration):
            return m.CreatedPartyRegistration(ok(msg.request_id), vtn_id="vtn-test",
                                              registration_id="reg-1", ven_id=VEN_ID,
                                              poll_freq=timedelta(seconds=10))
        if isinstance(msg, m.RegisterReport):
            rr = m.ReportRequest("rr-usage", USAGE_SPEC, [
                m.SpecifierPayload(d.usage_rid, "Direct Read") for d in self.ders],
                granularity=timedelta(seconds=60), report_back_duration=timedelta(seconds=720))
            return m.RegisteredReport(ok(msg.request_id), [rr], ven_id=VEN_ID)
        if isinstance(msg, m.RequestEvent):
            return self.on_request
        if isinstance(msg, m.Poll):
            return self.queue.pop(0) if self.queue else m.Response(ok(), ven_id=VEN_ID)
        if isinstance(msg, m.UpdateReport):
            return m.UpdatedReport(ok(msg.request_id), ven_id=VEN_ID)
        if isinstance(msg, m.CreateOpt):
            return m.CreatedOpt(ok(msg.request_id), msg.opt_id)
        if isinstance(msg, m.CancelOpt):
            return m.CanceledOpt(ok(msg.request_id), msg.opt_id)
        if isinstance(msg, m.CreatedEvent | m.CreatedReport):
            return m.Response(ok(msg.response.request_id), ven_id=VEN_ID)
        raise AssertionError(f"unexpected {type(msg).__name__}")


def distribute(request_id: str, *events: m.Event) -> m.DistributeEvent:
    return m.DistributeEvent(request_id, "vtn-test", ok(request_id), list(events))


def event(event_id: str, signal: m.EventSignal, mod: int = 0, start_min: float = -5,
          status: str = "active", **kw: object) -> m.Event:
    return m.Event(
        event_id=event_id, modification_number=mod, market_context="http://mc.example/dr",
        created_date_time=T0, event_status=status,
        dtstart=T0 + timedelta(minutes=start_min), duration=timedelta(hours=1),
        signals=[signal], target=m.EventTarget(ven_ids=[VEN_ID]), **kw,  # type: ignore[arg-type]
    )


def simple(level: float) -> m.EventSignal:
    return m.EventSignal("SIMPLE", "level", "sig-0",
                         [m.SignalInterval(timedelta(hours=1), level)], current_value=level)


def usable_der(kind: Kind, capacity: float, n: int = 1, around: datetime = T0) -> Der:
    """A DER of ``kind`` not busy around ``around`` (seeds tried in order)."""
    t0 = around.timestamp()
    for seed in range(1, 1000):
        der = Der(kind, f"{kind.key}-{n}", capacity, seed)
        if all(der_busy(der, t0 + dt, LON) is None for dt in range(-1800, 1801, 300)):
            return der
    raise AssertionError("no usable seed")


def osb_name(busy: bool, *event_ids: str) -> str:
    for i in range(1000):
        name = f"osb-test-{i}"
        if all(household_busy(name_seed(name), e) is busy for e in event_ids):
            return name
    raise AssertionError("no fitting name")


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


Run = Callable[[Callable[[], bool]], object]


@pytest.fixture
async def stand_in() -> AsyncIterator[Callable[[Osb], tuple[StandIn, Run]]]:
    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(osb: Osb) -> tuple[StandIn, Run]:
        vtn = StandIn(osb.ders)
        app = web.Application()
        app.router.add_post(OADR_PATH + "/{service}", vtn.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        session = aiohttp.ClientSession()
        sessions.append(session)
        link = HttpLink(session, f"http://127.0.0.1:{port}", Stats())
        clock = Clock()
        env = Env(Scenario(), rng=random.Random(1), now=clock, wall_offset=T0.timestamp())

        async def run(until: Callable[[], bool]) -> None:
            for _ in range(500):
                wake = await osb.step(link, env, clock.t)
                assert wake is not None
                if until():
                    return
                clock.t = max(wake, clock.t)
            raise AssertionError("condition not reached")

        run.stats = link.stats  # type: ignore[attr-defined]
        run.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]

        return vtn, run  # type: ignore[return-value]

    yield start  # type: ignore[misc]
    for s in sessions:
        await s.close()
    for r in runners:
        await r.cleanup()


def usage(vtn: StandIn, after: int = 0) -> dict[str, list[tuple[float, float]]]:
    """rID -> [(interval start, W)] from the oadrUpdateReports received after index."""
    out: dict[str, list[tuple[float, float]]] = {}
    for msg in vtn.received[after:]:
        if isinstance(msg, m.UpdateReport):
            for rep in msg.reports:
                for iv in rep.intervals:
                    for p in iv.payloads:
                        assert iv.dtstart is not None and p.value is not None
                        out.setdefault(p.r_id, []).append((iv.dtstart.timestamp(), p.value))
    return out


def split(vtn: StandIn, ders: tuple[Der, ...], start: datetime, after: int = 0,
          ) -> tuple[list[tuple[Der, float, float]], list[tuple[Der, float, float]]]:
    """(der, reported, model power) before the start, and from one ramp after it."""
    before, during = [], []
    by_rid = {d.usage_rid: d for d in ders}
    for rid, values in usage(vtn, after).items():
        der = by_rid[rid]
        for t, v in values:
            row = (der, v, der.power(t, LON))
            if t < start.timestamp():
                before.append(row)
            elif t >= start.timestamp() + 60:
                during.append(row)
    return before, during


async def test_opt_in_once_per_modification_and_simple_level_2_sheds_two_thirds(
        stand_in) -> None:  # type: ignore[no-untyped-def]
    ders = (usable_der(HEAT_PUMP, 7000.0), usable_der(LIGHTING, 600.0))
    osb = Osb(osb_name(False, "ev-1", "ev-2"), (52.5, LON), ders)
    vtn, run = await stand_in(osb)
    ev = event("ev-1", simple(2))
    vtn.on_request = distribute("dist-1", ev)

    await run(lambda: bool(vtn.of(m.CreatedEvent)) and bool(usage(vtn)))
    assert isinstance(vtn.received[vtn.received.index(vtn.of(m.CreatedReport)[0]) + 1],
                      m.RequestEvent)  # asked for events right after registering
    [created] = vtn.of(m.CreatedEvent)
    assert created.response.request_id == "" and created.ven_id == VEN_ID
    [answer] = created.event_responses
    assert (answer.event_id, answer.modification_number, answer.opt_type) == ("ev-1", 0, "optIn")
    assert answer.response.request_id == "dist-1" and answer.response.code == 200
    assert not vtn.of(m.CreateOpt)

    before, during = split(vtn, ders, ev.dtstart)
    assert before and during
    assert all(v == model for _, v, model in before)
    flex = {HEAT_PUMP.key: 1.0, LIGHTING.key: 0.5}  # documented flexible shares
    for der, v, model in during:
        assert v == pytest.approx(model * (1 - 2 / 3 * flex[der.kind.key]), abs=0.11)
    mean = lambda rows: sum(v for _, v, _ in rows) / len(rows)  # noqa: E731
    assert mean(during) < 0.5 * mean(before)

    # the same modification again: no second answer; a modification: answered again
    vtn.queue = [distribute("dist-2", ev)]
    polls = len(vtn.of(m.Poll))
    await run(lambda: len(vtn.of(m.Poll)) > polls + 1)
    assert len(vtn.of(m.CreatedEvent)) == 1
    ev1 = event("ev-1", simple(1), mod=1)
    vtn.queue = [distribute("dist-3", ev1)]
    await run(lambda: len(vtn.of(m.CreatedEvent)) == 2)
    [again] = vtn.of(m.CreatedEvent)[1].event_responses
    assert (again.modification_number, again.opt_type, again.response.request_id) == (
        1, "optIn", "dist-3")

    # a cancelled event is acknowledged and does nothing; dropping ev-1 cancels it
    cancelled = event("ev-2", simple(3), status="cancelled")
    vtn.queue = [distribute("dist-4", cancelled)]
    await run(lambda: len(vtn.of(m.CreatedEvent)) == 3)
    [ack] = vtn.of(m.CreatedEvent)[2].event_responses
    assert ack.event_id == "ev-2" and ack.response.request_id == "dist-4"
    mark = len(vtn.received)
    await run(lambda: len(usage(vtn, mark)) == len(ders))
    assert osb.events is not None and not osb.events.live
    assert all(v == model for _, v, model in split(vtn, ders, ev.dtstart, mark)[1])
    vtn.queue = [distribute("dist-5")]
    await run(lambda: vtn.of(m.Poll) and not vtn.queue and osb.events is None)

    assert run.stats.to_dict()["events"] == {  # type: ignore[attr-defined]
        "received": 3, "opt_ins": 3, "opt_outs": 0, "opt_schedules": 0}
    assert not vtn.invalid


async def test_a_busy_household_opts_out_with_a_valid_schedule_and_keeps_its_load(
        stand_in) -> None:  # type: ignore[no-untyped-def]
    ders = (usable_der(HEAT_PUMP, 5000.0), usable_der(WATER_HEATER, 3000.0))
    osb = Osb(osb_name(True, "ev-busy"), (52.5, LON), ders)
    vtn, run = await stand_in(osb)
    ev = event("ev-busy", simple(3), start_after=timedelta(minutes=10))
    never = event("ev-info", simple(0), response_required="never")  # followed, unanswered
    vtn.on_request = distribute("dist-1", ev, never)

    await run(lambda: bool(vtn.of(m.CreateOpt)) and bool(usage(vtn)))
    [created] = vtn.of(m.CreatedEvent)
    [answer] = created.event_responses  # none for responseRequired=never
    assert (answer.event_id, answer.opt_type, answer.response.request_id) == (
        "ev-busy", "optOut", "dist-1")
    [opt] = vtn.of(m.CreateOpt)
    assert opt.opt_type == "optOut" and opt.ven_id == VEN_ID
    assert opt.event_id is None and opt.modification_number is None  # a schedule, not both
    assert sorted(opt.resource_ids) == sorted(d.resource_id for d in ders)
    # covers the active period, randomised start included
    assert opt.availability == [(ev.dtstart, timedelta(minutes=70))]
    assert opt.market_context == ev.market_context
    before, during = split(vtn, ders, ev.dtstart)
    assert all(v == model for _, v, model in before + during)

    # a modification: the old schedule is withdrawn, the event answered and scheduled anew
    vtn.queue = [distribute("dist-2", event("ev-busy", simple(2), mod=1), never)]
    await run(lambda: len(vtn.of(m.CreateOpt)) == 2)
    [cancel] = vtn.of(m.CancelOpt)
    assert cancel.opt_id == opt.opt_id and vtn.of(m.CreateOpt)[1].opt_id != opt.opt_id
    assert vtn.of(m.CreatedEvent)[1].event_responses[0].modification_number == 1
    assert run.stats.to_dict()["events"] == {  # type: ignore[attr-defined]
        "received": 3, "opt_ins": 0, "opt_outs": 2, "opt_schedules": 2}
    assert not vtn.invalid


async def test_load_dispatch_delta_sheds_that_many_watts_with_the_battery(
        stand_in) -> None:  # type: ignore[no-untyped-def]
    ders = (usable_der(BATTERY, 5000.0), usable_der(HEAT_PUMP, 5000.0),
            usable_der(PV, 6000.0))
    osb = Osb(osb_name(False, "ev-d"), (52.5, LON), ders)
    vtn, run = await stand_in(osb)
    dispatch = m.EventSignal(
        "LOAD_DISPATCH", "delta", "sig-0", [m.SignalInterval(timedelta(hours=1), -1.5)],
        item_base=m.ItemBase("powerReal", "RealPower", "W", "k", hertz=50.0, voltage=230.0,
                             ac=True))
    ev = event("ev-d", dispatch)
    vtn.on_request = distribute("dist-1", ev)
    await run(lambda: bool(usage(vtn)))
    assert vtn.of(m.CreatedEvent)[0].event_responses[0].opt_type == "optIn"

    before, during = split(vtn, ders, ev.dtstart)
    assert all(v == model for _, v, model in before)
    pv = [(v, model) for d, v, model in during if d.kind is PV]
    assert pv and all(v == model for v, model in pv)  # generation is not shed
    by_t: dict[float, list[float]] = {}
    for values in usage(vtn).values():
        for t, v in values:
            by_t.setdefault(t, []).append(v)
    for t, values in by_t.items():
        if t >= ev.dtstart.timestamp() + 60:
            model = sum(d.power(t, LON) for d in ders)
            assert sum(values) == pytest.approx(model - 1500.0, abs=0.3)
    assert not vtn.invalid


def _held_powers(ders: tuple[Der, ...], signal: m.EventSignal, name: str = "") -> tuple[
        OsbEvents, list[float], list[float]]:
    events = OsbEvents(name or osb_name(False, "ev-u"))
    out = events.receive(ders, LON, distribute("d", event("ev-u", signal)), T0.timestamp(),
                         VEN_ID)
    assert out.new == 1 and [r.opt_type for r in out.responses] == ["optIn"]
    t = T0.timestamp()
    shaped = events.powers(ders, LON, t)
    assert shaped is not None
    return events, shaped, [d.power(t, LON) for d in ders]


def test_load_control_capacity_zero_disconnects_all_but_pv() -> None:
    ders = (usable_der(HEAT_PUMP, 5000.0), usable_der(BATTERY, 5000.0),
            usable_der(PV, 6000.0))
    sig = m.EventSignal("LOAD_CONTROL", "x-loadControlCapacity", "s",
                        [m.SignalInterval(timedelta(hours=1), 0.0)])
    _, shaped, model = _held_powers(ders, sig)
    assert shaped[:2] == [0.0, 0.0] and shaped[2] == model[2]
    half = m.EventSignal("LOAD_CONTROL", "x-loadControlCapacity", "s",
                         [m.SignalInterval(timedelta(hours=1), 0.1)])
    _, shaped, model = _held_powers(ders, half)
    assert shaped[0] == min(model[0], 500.0) and abs(shaped[1]) <= 500.0


def test_prices_shed_above_the_threshold_only_and_offsets_follow_their_sign() -> None:
    ders = (usable_der(HEAT_PUMP, 5000.0),)
    for value, share in ((0.45, 2 / 3), (0.12, 0.0)):
        sig = m.EventSignal("ELECTRICITY_PRICE", "price", "s",
                            [m.SignalInterval(timedelta(hours=1), value)])
        _, shaped, model = _held_powers(ders, sig)
        assert shaped[0] == pytest.approx(model[0] * (1 - share), abs=0.11)
    pct = m.EventSignal("LOAD_CONTROL", "x-loadControlPercentOffset", "s",
                        [m.SignalInterval(timedelta(hours=1), -25.0)])
    _, shaped, model = _held_powers(ders, pct)
    assert shaped[0] == pytest.approx(model[0] * 0.75, abs=0.11)
    cooler = m.EventSignal("LOAD_CONTROL", "x-loadControlSetpoint", "s",
                           [m.SignalInterval(timedelta(hours=1), 18.5)])  # normal 21, min 16
    _, shaped, model = _held_powers(ders, cooler)
    assert shaped[0] == pytest.approx(model[0] * 0.5, abs=0.11)


def test_an_ev_charging_for_departure_is_busy_and_an_unknown_signal_is_refused() -> None:
    t0 = T0.timestamp()
    for seed in range(1, 5000):
        ev_der = Der(EVSE, "ev-charger-1", 7400.0, seed)
        late = t0 + 5 * 3600  # 19:13 local: arrival time
        if ev_der.kind.power(ev_der, late, LON) > 0 and der_busy(ev_der, late, LON):
            break
    else:
        raise AssertionError("no charging day")
    assert der_busy(ev_der, late, LON) == "mustRun"
    events = OsbEvents(osb_name(False, "ev-late"))
    ev = event("ev-late", simple(2), start_min=5 * 60)
    out = events.receive((ev_der,), LON, distribute("d", ev), t0, VEN_ID)
    assert [r.opt_type for r in out.responses] == ["optOut"]
    [opt] = out.opts
    assert opt.opt_reason == "mustRun" and opt.resource_ids == ["ev-charger-1"]
    validate(encode(opt))

    bid = m.EventSignal("BID_PRICE", "price", "s", [m.SignalInterval(timedelta(hours=1), 1.0)])
    out = events.receive((usable_der(HEAT_PUMP, 5000.0),), LON,
                         distribute("d2", event("ev-bid", bid)), t0, VEN_ID)
    assert [r.opt_type for r in out.responses] == ["optOut"] and not out.opts


def test_ramp_start_after_and_recovery() -> None:
    ders = (usable_der(HEAT_PUMP, 5000.0),)
    name = osb_name(False, "ev-r")
    events = OsbEvents(name)
    ev = event("ev-r", simple(3), start_min=0, start_after=timedelta(minutes=20),
               recovery=timedelta(minutes=2))
    events.receive(ders, LON, distribute("d", ev), T0.timestamp(), VEN_ID)
    [held] = events.live
    start = T0.timestamp()
    assert start <= held.start < start + 1200  # this OSB's offset within startafter
    assert held.start == OsbEvents(name).decide(ders, LON, ev, start, VEN_ID)[0].start
    assert events.powers(ders, LON, held.start - 1) is None
    assert held.ramp(held.start + 30) == pytest.approx(0.5)
    assert events.powers(ders, LON, held.start + 120) == [0.0]
    assert held.ramp(held.end + 60) == pytest.approx(0.5)
    assert events.powers(ders, LON, held.end + 121) is None


def test_the_live_view_and_summary_show_event_counters() -> None:
    from rich.console import Console

    stats = Stats(events_received=3, opt_ins=2, opt_outs=1, opt_schedules=1)
    console = Console(record=True, width=120)
    console.print(render(stats))
    text = console.export_text()
    assert "events 3" in text and "opt-in 2" in text and "opt schedules 1" in text
    assert stats.to_dict()["events"]["opt_outs"] == 1


async def test_openleadr_clients_make_the_same_decision_and_follow_the_event(
        stand_in) -> None:  # type: ignore[no-untyped-def]
    from openleadr.messaging import parse_message

    from ven_sim.olclient import make_client

    now = datetime.now(UTC)  # openleadr runs on the wall clock
    ders = (usable_der(WATER_HEATER, 3000.0, around=now), usable_der(LIGHTING, 300.0,
                                                                     around=now))
    osb = Osb("osb-ol", (52.5, LON), ders)
    vtn, run = await stand_in(osb)
    stats = Stats()
    client = make_client(osb, run.url, stats, 60.0)  # type: ignore[attr-defined]
    client.ven_id = VEN_ID
    handler = client.on_event.__self__
    busy_id = next(f"ev-{i}" for i in range(1000)
                   if household_busy(name_seed("osb-ol"), f"ev-{i}"))
    free_id = next(f"ev-{i}" for i in range(1000)
                   if not household_busy(name_seed("osb-ol"), f"ev-{i}"))
    ev_in = event(free_id, m.EventSignal(
        "LOAD_CONTROL", "x-loadControlCapacity", "s",
        [m.SignalInterval(timedelta(hours=1), 0.0)]))
    ev_in.dtstart = now - timedelta(minutes=5)
    ev_out = event(busy_id, simple(2))
    ev_out.dtstart = now - timedelta(minutes=5)
    try:
        _, payload = parse_message(encode(distribute("dist-ol", ev_in, ev_out)))
        await client._on_event(payload)  # openleadr's own path: handlers, oadrCreatedEvent
        for task in list(handler.tasks):
            await task
    finally:
        await client.client_session.close()
    [created] = vtn.of(m.CreatedEvent)
    assert [(r.event_id, r.opt_type) for r in created.event_responses] == [
        (free_id, "optIn"), (busy_id, "optOut")]
    opts = vtn.of(m.CreateOpt)  # one per DER: openleadr writes one eiTarget per target
    assert sorted(r for o in opts for r in o.resource_ids) == sorted(
        d.resource_id for d in ders)
    assert all(o.opt_type == "optOut" and o.availability == [
        (ev_out.dtstart, timedelta(hours=1))] for o in opts)
    assert not vtn.invalid
    assert stats.to_dict()["events"] == {"received": 2, "opt_ins": 1, "opt_outs": 1,
                                         "opt_schedules": 2}
    # the usage readers follow the opted-in capacity-0 event: disconnected
    readers = [c for r in client.reports for c in [client.report_callbacks.get(
        (r.report_specifier_id, d.r_id)) for d in r.report_descriptions] if c]
    assert readers and all(read() == 0.0 for read in readers)
