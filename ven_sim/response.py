"""How a simulated OSB's DERs change their load for an event's signals.

Pure functions of (DER, its normal power, time): the DER models in :mod:`ven_sim.devices`
stay stateless, an event only reshapes what they would have drawn. Sign convention as
there: consumption positive, battery positive while charging, PV generation positive.

Signal -> load (the "flexible part" of a load is what it draws now times its kind's
:data:`FLEX_SHARE`; a battery's is its charge plus what it can discharge):

- ``SIMPLE`` level 0/1/2/3: shed 0 %, a third, two thirds, all of the flexible part
  (normal, moderate, high, special).
- ``ELECTRICITY_PRICE`` / ``ENERGY_PRICE``: above :data:`PRICE_LIMITS` (per signal type)
  shed :data:`PRICE_SHED` of the flexible part, else nothing.
- ``LOAD_DISPATCH`` ``delta`` (W, negative = shed) / ``setpoint`` (W, the responding DERs'
  total): spread over the responding DERs in proportion to what each can shed (or add).
- ``LOAD_CONTROL`` ``x-loadControlCapacity`` f: at most f x rated power; **0 means
  disconnect** (power 0). ``x-loadControlLevelOffset`` n: like SIMPLE, n levels of a
  third each (negative = less load, positive = more, up to the rating).
  ``x-loadControlPercentOffset`` p: shed -p % of the flexible part (p < 0) or add p % of
  the headroom (p > 0). ``x-loadControlSetpoint`` (degC, thermal loads only): each degree
  below the DER's normal setpoint sheds 1 / (normal - min) of its flexible part.

PV never changes (generation is not sheddable load); batteries discharge to shed. The
change ramps in linearly over :data:`RAMP_S` from the (randomised) start and recovers
over the event's ``recovery`` (else :data:`RAMP_S`) after its end.
"""

from __future__ import annotations

from collections.abc import Sequence

from ven_sim.devices import BATTERY, LIGHTING, PV, Der, battery_available
from vtn.codec import messages as m

SHED_LEVELS = (0.0, 1 / 3, 2 / 3, 1.0)  # SIMPLE level -> share of the flexible part shed
LEVEL_STEP = 1 / 3  # x-loadControlLevelOffset: one level
PRICE_LIMITS = {"price": 0.30, "priceRelative": 0.10, "priceMultiplier": 1.5}
PRICE_SHED = 2 / 3
FLEX_SHARE = {LIGHTING.key: 0.5, PV.key: 0.0}  # others 1.0: all of what they draw
RAMP_S = 60.0

# what a signal value does: per-DER shed share, per-DER capacity cap, per-DER thermal
# setpoint, or a household-level change of the responding DERs' total
SHED, CAP, TEMP, DELTA, SETPOINT = range(5)

_PRICES = frozenset({"ELECTRICITY_PRICE", "ENERGY_PRICE"})
_SCALE = {"none": 1.0, "k": 1e3, "M": 1e6, "m": 1e-3}


def op_of(name: str, signal_type: str, value: float) -> tuple[int, float] | None:
    """(operation, amount) for a signal value; None for signals an OSB cannot follow."""
    if name in ("SIMPLE", "simple") and signal_type == "level":
        return SHED, SHED_LEVELS[max(0, min(3, int(value)))]
    if name in _PRICES and signal_type in PRICE_LIMITS:
        return SHED, PRICE_SHED if value > PRICE_LIMITS[signal_type] else 0.0
    if name == "LOAD_DISPATCH":
        if signal_type == "delta":
            return DELTA, value
        if signal_type == "setpoint":
            return SETPOINT, value
        return None
    if name == "LOAD_CONTROL":
        if signal_type == "x-loadControlCapacity":
            return CAP, value
        if signal_type == "x-loadControlLevelOffset":
            return SHED, max(-1.0, min(1.0, -value * LEVEL_STEP))
        if signal_type == "x-loadControlPercentOffset":
            return SHED, max(-1.0, min(1.0, -value / 100.0))
        if signal_type == "x-loadControlSetpoint":
            return TEMP, value
    return None


def scale_of(signal: m.EventSignal) -> float:
    """Multiplier to W for LOAD_DISPATCH values given in kW or MW."""
    item = signal.item_base
    if signal.signal_name != "LOAD_DISPATCH" or item is None:
        return 1.0
    return _SCALE.get(item.si_scale or "none", 1.0)


def responds(der: Der, op: int) -> bool:
    """Whether ``der`` can follow an operation at all (PV never; setpoints: thermal)."""
    if der.kind is PV:
        return False
    if op == TEMP:
        return der.kind.setpoint is not None
    return True


def _floor(der: Der, p: float, t: float, lon: float) -> float:
    """The lowest power shedding can bring ``der`` to at ``t``."""
    if der.kind is BATTERY:
        return -battery_available(der, t, lon)
    return p * (1.0 - FLEX_SHARE.get(der.kind.key, 1.0))


def _ceiling(der: Der) -> float:
    return der.capacity_w * (1.0 if der.kind is BATTERY else FLEX_SHARE.get(der.kind.key, 1.0))


def shed(der: Der, p: float, t: float, lon: float, share: float) -> float:
    """``p`` with ``share`` of the flexible part shed (negative: that share of the
    headroom added)."""
    if der.kind is PV or share == 0.0:
        return p
    if share > 0:
        floor = _floor(der, p, t, lon)
        return p if p <= floor else p - share * (p - floor)
    return p - share * max(0.0, _ceiling(der) - p)


def cap(der: Der, p: float, fraction: float) -> float:
    """At most ``fraction`` x rated power either way; 0 disconnects the DER."""
    if der.kind is PV:
        return p
    limit = max(0.0, fraction) * der.capacity_w
    return max(-limit, min(p, limit))


def thermal_share(der: Der, setpoint: float) -> float:
    """Shed share for a thermostat setpoint: degrees below normal over (normal - min)."""
    if der.kind.setpoint is None:
        return 0.0
    lo, normal, _, _ = der.kind.setpoint
    return max(-1.0, min(1.0, (normal - setpoint) / (normal - lo)))


def dispatch(ders: Sequence[Der], powers: list[float], idx: Sequence[int], t: float,
             lon: float, delta: float) -> None:
    """Change the total of ``powers[idx]`` by ``delta`` W (in place), each DER in
    proportion to what it can shed (delta < 0) or add (delta > 0)."""
    if delta == 0 or not idx:
        return
    if delta < 0:
        room = [max(0.0, powers[i] - _floor(ders[i], powers[i], t, lon)) for i in idx]
    else:
        room = [max(0.0, _ceiling(ders[i]) - powers[i]) for i in idx]
    total = sum(room)
    if total <= 0:
        return
    move = min(abs(delta), total) * (1.0 if delta > 0 else -1.0)
    for i, r in zip(idx, room, strict=True):
        powers[i] += move * r / total


def apply(ders: Sequence[Der], powers: list[float], idx: Sequence[int], t: float,
          lon: float, op: int, x: float, ramp: float) -> None:
    """Move ``powers[idx]`` (in place) ``ramp`` (0..1) of the way to what the operation
    asks for."""
    if op == DELTA or op == SETPOINT:
        delta = x - sum(powers[i] for i in idx) if op == SETPOINT else x
        dispatch(ders, powers, idx, t, lon, delta * ramp)
        return
    for i in idx:
        der, p = ders[i], powers[i]
        if op == CAP:
            target = cap(der, p, x)
        elif op == TEMP:
            target = shed(der, p, t, lon, thermal_share(der, x))
        else:
            target = shed(der, p, t, lon, x)
        powers[i] = p + ramp * (target - p)
