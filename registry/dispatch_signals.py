"""The OpenADR 2.0b signals of a group dispatch's per-VEN event (docs/der-group-dispatch.md).

- ``power``: ``LOAD_DISPATCH`` ``delta`` in kW (item powerReal, siScaleCode k), one value
  per slot: minus the VEN's share (negative = reduce the net load; a battery or generator
  delivers by producing more, which is a negative load too).
- ``disconnect``: ``LOAD_CONTROL`` ``x-loadControlCapacity`` 0 (at most 0 x rated power:
  off), plus ``SIMPLE`` level 3 (special shed) for VENs that only know SIMPLE, the one
  signal every 2.0b VEN must follow.
- ``connect``: ``LOAD_CONTROL`` ``x-loadControlCapacity`` rising to 1 (1 = no limit).
- Ramp rate (``ramp_s``): 2.0b has no ramp field that shapes the signal (rampUp is a
  notice period), so every change of value (including the start from the normal level) is
  sent as :data:`RAMP_STEPS` equal steps of ``min(ramp_s, slot) / RAMP_STEPS`` seconds
  (interval shaping), and the event's ``recovery`` is ``ramp_s``: the VEN returns to
  normal over that long after the end.
"""

from __future__ import annotations

import math

from registry.events import EventSignal, SignalInterval, SignalName
from registry.group_dispatch import RAMP_STEPS, DispatchMode, GroupDispatch


def _shaped(durations: list[float], values: list[float], start: float, ramp_s: float
            ) -> list[SignalInterval]:
    """Intervals for slot values, each change from the previous value (``start`` before
    the first) spread over RAMP_STEPS steps within the first ``ramp_s`` of its slot."""
    out: list[SignalInterval] = []
    prev = start
    for d, v in zip(durations, values, strict=True):
        ramp = min(ramp_s, d)
        if ramp > 0 and v != prev:
            step = ramp / RAMP_STEPS
            for k in range(1, RAMP_STEPS + 1):
                out.append(SignalInterval(duration_s=step, value=prev + (v - prev) * k
                                          / RAMP_STEPS))
            if d - ramp > 1e-9:
                out.append(SignalInterval(duration_s=d - ramp, value=v))
            else:  # the step durations must add up to the slot exactly
                out[-1] = SignalInterval(duration_s=d - step * (RAMP_STEPS - 1), value=v)
        else:
            out.append(SignalInterval(duration_s=d, value=v))
        prev = v
    return out


def signals_for(dispatch: GroupDispatch, ven_kw: list[float]) -> list[EventSignal]:
    """The signals of one VEN's event; ``ven_kw`` its members' kW per slot."""
    durations = [s.duration_s for s in dispatch.slots]
    ramp = dispatch.ramp_s
    if dispatch.mode is DispatchMode.POWER:
        values = [-round(kw, 3) + 0.0 for kw in ven_kw]
        return [EventSignal(
            signal_name=SignalName.LOAD_DISPATCH, signal_type="delta", signal_id="dispatch",
            item_kind="powerReal", units="kW",
            intervals=_shaped(durations, values, 0.0, ramp))]
    if dispatch.mode is DispatchMode.DISCONNECT:
        capacity = _shaped(durations, [0.0] * len(durations), 1.0, ramp)
        levels = [SignalInterval(duration_s=iv.duration_s,
                                 value=min(3, math.ceil(3 * (1 - iv.value) - 1e-9)))
                  for iv in capacity]
        return [
            EventSignal(signal_name=SignalName.LOAD_CONTROL,
                        signal_type="x-loadControlCapacity", signal_id="capacity",
                        intervals=capacity),
            EventSignal(signal_name=SignalName.SIMPLE, signal_type="level",
                        signal_id="simple", intervals=levels),
        ]
    return [EventSignal(signal_name=SignalName.LOAD_CONTROL,
                        signal_type="x-loadControlCapacity", signal_id="capacity",
                        intervals=_shaped(durations, [1.0] * len(durations), 0.0, ramp))]
