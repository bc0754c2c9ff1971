"""An OSB's DR events: which ones it holds, how it answers them, how its load follows.

:class:`OsbEvents` is the event set of one VEN, replaced by every oadrDistributeEvent
(2.0b: an event no longer listed is cancelled). It decides optIn / optOut once per
(eventID, modificationNumber), builds the oadrCreatedEvent answers and the optOut
schedules, and reshapes the DERs' power during opted-in events (:mod:`ven_sim.response`); capacity
limits (``LOAD_CONTROL`` ``x-loadControlCapacity``, 0 = disconnect, as a group dispatch
sends it with ``SIMPLE`` 3 alongside) are applied after every other signal, so a shed
that would discharge a battery cannot undo a disconnect.
No I/O here; :class:`ven_sim.osb.Osb` sends what it returns.

The opt rule (docs/osb-profile.md, "How simulated OSBs answer events"): the targeted DERs
are the event's resourceIDs among the OSB's own (none listed: all of them). A targeted DER
is *busy* when, at the event's (randomised) start, it is offline or under manual override,
it is an EV charging for an early departure (:data:`EV_MUST_RUN` of charging days), or a
heat pump in a comfort window of a comfort-first household (:data:`COMFORT_FIRST`); and a
:data:`BUSY_SHARE` of households is busy for any given event (deterministic from the OSB
name and the eventID). It *responds* when not busy and able to follow a signal of the
event (PV never, thermal setpoints only thermal loads, an EV only while plugged in). The
OSB opts in when one targeted DER responds, else opts out; busy DERs get one optOut
oadrCreateOpt availability schedule covering the event's active period.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ven_sim import response
from ven_sim.devices import EVSE, HEAT_PUMP, THERMOSTAT, Der, day_index, local_hours, noise
from ven_sim.session import INF, ok, request_id
from vtn.codec import messages as m

BUSY_SHARE = 0.15  # households that opt out of any one event whatever their DERs
EV_MUST_RUN = 0.4  # charging days on which the car must be full for an early departure
COMFORT_FIRST = 0.3  # households whose heat pump keeps comfort in its comfort windows
COMFORT_HOURS = ((6.0, 9.0), (17.0, 21.0))  # local time
OPEN_ENDED_OPT = timedelta(days=1)  # opt-out window for an open-ended event
OPT_IN, OPT_OUT = "optIn", "optOut"


def name_seed(name: str) -> int:
    return zlib.crc32(name.encode())


def _id_seed(event_id: str) -> int:
    return zlib.crc32(event_id.encode())


def household_busy(seed: int, event_id: str) -> bool:
    """Whether the household (``name_seed`` of its OSB) sits this event out."""
    return noise(seed, _id_seed(event_id), 41) < BUSY_SHARE


def start_offset(seed: int, event_id: str, start_after_s: float) -> float:
    """This OSB's start delay within the event's startafter tolerance (seconds)."""
    return noise(seed, _id_seed(event_id), 43) * start_after_s if start_after_s > 0 else 0.0


def der_busy(der: Der, t: float, lon: float) -> str | None:
    """The optReason a DER cannot take part at ``t`` for, or None."""
    status = der.status(t, lon)
    if not status.online:
        return "outageRunStatus"
    if status.manual_override:
        return "overrideStatus"
    if der.kind is EVSE and der.kind.power(der, t, lon) > 0 and (
            noise(der.seed, day_index(t, lon), 21) < EV_MUST_RUN):
        return "mustRun"
    if der.kind in (HEAT_PUMP, THERMOSTAT) and noise(der.seed, 22) < COMFORT_FIRST:
        h = local_hours(t, lon)
        if any(lo <= h < hi for lo, hi in COMFORT_HOURS):
            return "mustRun"
    return None


def _able(der: Der, ops: set[int], t: float, lon: float) -> bool:
    if der.kind is EVSE and der.kind.power(der, t, lon) <= 0:
        return False  # not plugged in: nothing to shed
    return any(response.responds(der, op) for op in ops)


class Signal:
    """One event signal, compiled: its interval ends (s after start) and values."""

    __slots__ = ("name", "type", "scale", "ends", "values", "mask")

    def __init__(self, sig: m.EventSignal, mask: int) -> None:
        self.name, self.type = sig.signal_name, sig.signal_type
        self.scale = response.scale_of(sig)
        self.ends: list[float] = []
        end = 0.0
        for iv in sig.intervals:
            d = iv.duration.total_seconds()
            end = INF if d <= 0 else end + d
            self.ends.append(end)
        self.values = [iv.value * self.scale for iv in sig.intervals]
        self.mask = mask  # the DERs it applies to (signal target, else all of the event's)

    def op(self) -> int | None:
        found = response.op_of(self.name, self.type, 0.0)
        return None if found is None else found[0]

    def at(self, offset: float) -> tuple[int, float] | None:
        value = self.values[-1]
        for end, v in zip(self.ends, self.values, strict=True):
            if offset < end:
                value = v
                break
        return response.op_of(self.name, self.type, value)


class Held:
    """An event as this OSB holds it: its answer and, if opted in, its load window."""

    __slots__ = ("event_id", "mod", "cancelled", "start", "end", "settle", "signals",
                 "mask", "opt", "answered", "opt_id")

    def __init__(self, ev: m.Event, start: float, signals: list[Signal]) -> None:
        self.event_id = ev.event_id
        self.mod = ev.modification_number
        self.cancelled = ev.event_status == "cancelled"
        self.start = start
        d = ev.duration.total_seconds()
        self.end = start + d if d > 0 else INF
        rec = ev.recovery.total_seconds() if ev.recovery else response.RAMP_S
        self.settle = self.end + rec
        self.signals = signals
        self.mask = 0  # responding DERs
        self.opt = OPT_IN
        self.answered = False
        self.opt_id: str | None = None  # the optOut schedule sent for it

    @property
    def effective(self) -> bool:
        return self.opt == OPT_IN and not self.cancelled and bool(self.mask)

    def ramp(self, t: float) -> float:
        if t < self.start or t >= self.settle:
            return 0.0
        if t < self.end:
            return min(1.0, (t - self.start) / response.RAMP_S)
        return 1.0 - (t - self.end) / (self.settle - self.end)


@dataclass
class Outcome:
    """What one distribute makes the OSB send."""

    new: int = 0  # events (or modifications) not seen before
    responses: list[m.EventResponse] = field(default_factory=list)
    pending: list[Held] = field(default_factory=list)  # answered once a reply arrives
    opts: list[m.CreateOpt] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)  # optIDs of superseded schedules


def _mask(ders: Sequence[Der], resource_ids: list[str]) -> int:
    if not resource_ids:
        return (1 << len(ders)) - 1
    wanted = set(resource_ids)
    return sum(1 << i for i, d in enumerate(ders) if d.resource_id in wanted)


class OsbEvents:
    """The current events of one OSB (created on its first non-empty distribute)."""

    __slots__ = ("name", "seed", "held", "live")

    def __init__(self, name: str) -> None:
        self.name = name
        self.seed = name_seed(name)
        self.held: dict[str, Held] = {}
        self.live: list[Held] = []  # opted-in, not cancelled: these shape the load

    def decide(self, ders: Sequence[Der], lon: float, ev: m.Event, wall: float,
               ven_id: str) -> tuple[Held, m.CreateOpt | None]:
        """The held event with its answer, and the optOut schedule when DERs are busy."""
        offset = start_offset(self.seed, ev.event_id,
                              ev.start_after.total_seconds() if ev.start_after else 0.0)
        targeted = _mask(ders, ev.target.resource_ids)
        signals = []
        for sig in ev.signals:
            sig_ids = sig.target.resource_ids if sig.target else []
            signals.append(Signal(sig, targeted & _mask(ders, sig_ids)))
        h = Held(ev, ev.dtstart.timestamp() + offset, signals)
        if h.cancelled:
            return h, None
        ops = {op for s in signals if (op := s.op()) is not None}
        at = max(h.start, wall)
        busy: list[tuple[Der, str]] = []
        if household_busy(self.seed, ev.event_id):
            busy = [(d, "notParticipating") for i, d in enumerate(ders) if targeted >> i & 1]
        else:
            for i, der in enumerate(ders):
                if not targeted >> i & 1:
                    continue
                reason = der_busy(der, at, lon)
                if reason is not None:
                    busy.append((der, reason))
                elif ops and _able(der, ops, at, lon):
                    h.mask |= 1 << i
        h.opt = OPT_IN if h.mask else OPT_OUT
        if not busy:
            return h, None
        h.opt_id = f"{self.name}.{ev.event_id}.{ev.modification_number}"[:128]
        window = ev.duration + (ev.start_after or timedelta(0)) if ev.duration else (
            OPEN_ENDED_OPT)
        return h, m.CreateOpt(
            opt_id=h.opt_id, opt_type=OPT_OUT, opt_reason=busy[0][1], request_id=request_id(),
            ven_id=ven_id, created_date_time=datetime.fromtimestamp(wall, UTC),
            market_context=ev.market_context or None,
            resource_ids=[d.resource_id for d, _ in busy],
            availability=[(ev.dtstart, window)],
        )

    def receive(self, ders: Sequence[Der], lon: float, msg: m.DistributeEvent, wall: float,
                ven_id: str) -> Outcome:
        """Take a distribute: the new event set and what to send about it."""
        out = Outcome()
        held: dict[str, Held] = {}
        for ev in msg.events:
            h = self.held.get(ev.event_id)
            if h is not None and h.mod == ev.modification_number:
                h.cancelled = h.cancelled or ev.event_status == "cancelled"
            else:
                old = h
                out.new += 1
                h, opt = self.decide(ders, lon, ev, wall, ven_id)
                if old is not None:
                    if old.opt_id is not None:
                        out.cancels.append(old.opt_id)
                    if h.cancelled:
                        h.opt = old.opt  # acknowledge the cancel with the answer given
                if opt is not None:
                    out.opts.append(opt)
            held[ev.event_id] = h
            if ev.response_required != "never" and not h.answered:
                out.responses.append(m.EventResponse(
                    ok(msg.request_id), ev.event_id, ev.modification_number, h.opt))
                out.pending.append(h)
        self.held = held
        self.live = [h for h in held.values() if h.effective]
        return out

    def hold(self, ders: Sequence[Der], lon: float, ev: m.Event, wall: float,
             ven_id: str) -> tuple[Held, m.CreateOpt | None]:
        """Take one event (openleadr hands them over one by one): decided afresh, held
        in place of an older version; events settled before ``wall`` are let go."""
        old = self.held.get(ev.event_id)
        h, opt = self.decide(ders, lon, ev, wall, ven_id)
        if old is not None and h.cancelled:
            h.opt = old.opt
        self.held = {k: v for k, v in self.held.items() if v.settle > wall}
        self.held[ev.event_id] = h
        self.live = [x for x in self.held.values() if x.effective]
        return h, opt

    def powers(self, ders: Sequence[Der], lon: float, t: float) -> list[float] | None:
        """Every DER's power at ``t`` with the events applied; None when none applies."""
        live = [h for h in self.live if h.start <= t < h.settle]
        if not live:
            return None
        powers = [d.power(t, lon) for d in ders]
        for limits in (False, True):  # a capacity limit (disconnect: 0) bounds the rest
            for h in live:
                ramp = h.ramp(t)
                offset = min(t, h.end) - h.start
                for sig in h.signals:
                    found = sig.at(offset)
                    if found is None or (found[0] == response.CAP) is not limits:
                        continue
                    idx = [i for i in range(len(ders)) if (h.mask & sig.mask) >> i & 1]
                    if idx:
                        response.apply(ders, powers, idx, t, lon, found[0], found[1], ramp)
        return [round(p, 1) for p in powers]
