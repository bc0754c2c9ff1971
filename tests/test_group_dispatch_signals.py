"""The 2.0b signals a group dispatch sends, and what ven-sim's OSBs do with them: the
events go through the VTN's distribute builder, the XML is XSD-validated and decoded
as an OSB receives it, and the OSB's DERs follow (disconnect: off; connect: a capacity
ramp; power: the kW delta, ramped in steps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from registry.dispatch_signals import signals_for
from registry.events import DrEvent, EventDelivery, EventTargets
from registry.group_dispatch import RAMP_STEPS, DispatchMode, DispatchSlot, GroupDispatch
from ven_sim.devices import BATTERY, WATER_HEATER, Der
from ven_sim.events import OPT_IN, OsbEvents
from vtn.codec import decode, encode, validate
from vtn.services.distribute import distribute

START = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
LON = 13.4


def dispatch(mode: DispatchMode, slots: list[tuple[float, float]], ramp_s: float = 0
             ) -> GroupDispatch:
    return GroupDispatch(dispatch_id="gd", group="g", mode=mode, dtstart=START, ramp_s=ramp_s,
                         slots=[DispatchSlot(duration_s=d, kw=k) for d, k in slots])


def test_power_is_load_dispatch_in_kw_and_a_ramp_is_steps() -> None:
    d = dispatch(DispatchMode.POWER, [(600, 8), (600, 4)], ramp_s=120)
    (sig,) = signals_for(d, [8.0, 4.0])
    assert (sig.signal_name.value, sig.signal_type, sig.units, sig.item_kind) == (
        "LOAD_DISPATCH", "delta", "kW", "powerReal")
    got = [(iv.duration_s, iv.value) for iv in sig.intervals]
    assert got == [(30, -2), (30, -4), (30, -6), (30, -8), (480, -8),
                   (30, -7), (30, -6), (30, -5), (30, -4), (480, -4)]
    assert sum(iv.duration_s for iv in sig.intervals) == d.duration_s
    (flat,) = signals_for(dispatch(DispatchMode.POWER, [(600, 8), (600, 8)]), [8.0, 8.0])
    assert [(iv.duration_s, iv.value) for iv in flat.intervals] == [(600, -8), (600, -8)]


def test_disconnect_is_capacity_zero_plus_simple_special_shed() -> None:
    cap, simple = signals_for(dispatch(DispatchMode.DISCONNECT, [(900, 0)], ramp_s=60), [0])
    assert (cap.signal_name.value, cap.signal_type) == ("LOAD_CONTROL", "x-loadControlCapacity")
    assert [iv.value for iv in cap.intervals] == [0.75, 0.5, 0.25, 0.0, 0.0]
    assert [iv.value for iv in simple.intervals] == [1, 2, 3, 3, 3]
    with pytest.raises(ValueError, match="ramp_s"):  # too many slots to shape
        dispatch(DispatchMode.POWER, [(60, 1)] * 250, ramp_s=10)
    assert RAMP_STEPS == 4


def osb_powers(d: GroupDispatch, kw: list[float], ders: list[Der], offsets: list[float]
               ) -> list[list[float]]:
    """Each DER's power at ``offsets`` s after the start, once the OSB got the event."""
    event = DrEvent(event_id="gd.0", program="p", dtstart=d.dtstart, duration_s=d.duration_s,
                    signals=signals_for(d, kw), targets=EventTargets(ven_ids=["v"]),
                    recovery_s=d.ramp_s or None)
    share = EventDelivery(event_id="gd.0", ven_id="v", resource_ids=[x.resource_id
                                                                       for x in ders])
    xml = encode(distribute("r1", "vtn", [(event, share)], START - timedelta(minutes=1)))
    validate(xml)
    msg = decode(xml)
    for seed in range(50):  # an OSB that takes part (ven-sim's households vary)
        events = OsbEvents(f"osb-{seed}")
        out = events.receive(ders, LON, msg, START.timestamp() - 60, "v")
        if out.responses and out.responses[0].opt_type == OPT_IN:
            break
    else:
        raise AssertionError("no household took part")
    out_powers = []
    for off in offsets:
        t = START.timestamp() + off
        got = events.powers(ders, LON, t)
        assert got is not None
        out_powers.append(got)
    return out_powers


DERS = [Der(WATER_HEATER, "boiler", 3000.0, 11), Der(BATTERY, "battery", 5000.0, 12)]


def test_an_osb_disconnects_and_a_connect_ramps_its_capacity_back() -> None:
    (off,) = osb_powers(dispatch(DispatchMode.DISCONNECT, [(900, 0)]), [0], DERS, [300])
    assert off == [0.0, 0.0]  # at most 0 x rated power either way: off
    ramp = dispatch(DispatchMode.CONNECT, [(240, 0)], ramp_s=240)
    steps = osb_powers(ramp, [0], DERS, [70, 130, 190])  # after ven-sim's own 60 s ramp
    for share, powers in zip((0.25, 0.5, 0.75), steps, strict=True):
        for der, p in zip(DERS, powers, strict=True):
            assert abs(p) <= share * der.capacity_w + 0.1, (der.resource_id, share, p)


def test_an_osb_follows_the_kw_delta() -> None:
    d = dispatch(DispatchMode.POWER, [(900, 2.0)])
    (during,) = osb_powers(d, [2.0], DERS, [300])
    t = START.timestamp() + 300
    normal = [x.power(t, LON) for x in DERS]
    assert sum(normal) - sum(during) == pytest.approx(2000.0, abs=1.0)  # 2 kW less
