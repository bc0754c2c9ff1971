"""Simulated DERs of an OSB and their behaviour over time.

Every value is a pure function of (device seed, wall-clock time, longitude): a DER keeps
no time-varying state, so a simulated VEN costs a few hundred bytes and intervals of the
past (several per oadrUpdateReport) can be computed on demand.

Sign convention of usage values (W): consumption is positive, PV generation is reported
as a positive power of the PV rID, a battery is positive while charging and negative while
discharging. Status ``capacity`` is ``oadrMax`` = rated power, ``oadrCurrent`` = what the
DER can offer right now (0 while offline or under manual override).
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass

from vtn.codec import messages as m

_MASK = (1 << 64) - 1
DAY = 86400.0


def noise(*xs: int) -> float:
    """Deterministic uniform value in [0, 1) from integers (splitmix64 mixing)."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = ((h ^ (x & _MASK)) * 0xBF58476D1CE4E5B9) & _MASK
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & _MASK
        h ^= h >> 29
    return (h >> 11) / float(1 << 53)


def local_hours(t: float, lon: float) -> float:
    """Mean solar time of day in hours at longitude ``lon``."""
    return ((t / 3600.0) + lon / 15.0) % 24.0


def day_index(t: float, lon: float) -> int:
    return int((t + lon / 15.0 * 3600.0) // DAY)


def season(t: float) -> float:
    """+1 at midsummer, -1 at midwinter (northern hemisphere)."""
    doy = (t / DAY) % 365.25
    return math.sin(2 * math.pi * (doy - 80) / 365.25)


class Der:
    """One simulated DER: what kind it is, its rating and its random seed."""

    __slots__ = ("kind", "resource_id", "capacity_w", "seed")

    def __init__(self, kind: Kind, resource_id: str, capacity_w: float, seed: int) -> None:
        self.kind = kind
        self.resource_id = resource_id
        self.capacity_w = capacity_w
        self.seed = seed

    @property
    def status_rid(self) -> str:
        return self.resource_id + "-status"

    @property
    def usage_rid(self) -> str:
        return self.resource_id + "-power"

    def power(self, t: float, lon: float) -> float:
        return round(self.kind.power(self, t, lon), 1)

    def status(self, t: float, lon: float) -> m.ResourceStatus:
        block = int(t // 3600)
        online = noise(self.seed, block, 7) >= 0.01
        override = noise(self.seed, int(t // 1800), 8) < 0.03
        available = self.kind.available(self, t, lon) if online and not override else 0.0
        lc = {"capacity": m.LoadControlValue(
            current=round(max(0.0, min(available, self.capacity_w)), 1),
            max=self.capacity_w, min=0.0,
        )}
        if self.kind.setpoint is not None:
            lo, normal, hi, night = self.kind.setpoint
            h = local_hours(t, lon)
            lc["setPoint"] = m.LoadControlValue(
                current=night if h < 6 or h >= 22 else normal, min=lo, max=hi, normal=normal
            )
        return m.ResourceStatus(online=online, manual_override=override, load_control=lc)


PowerFn = Callable[[Der, float, float], float]


@dataclass(frozen=True, slots=True)
class Kind:
    """A DER class: registry mrid, naming, ratings and behaviour."""

    key: str  # resource ID prefix
    mrid: str  # reportSubject/endDeviceAsset/mrid
    label: str
    capacities: tuple[float, ...]  # rated powers to pick from (W)
    weight: float  # share in the fleet mix
    power: PowerFn
    available: PowerFn
    # (min, normal, max, night) setpoint in degC, for thermal loads
    setpoint: tuple[float, float, float, float] | None = None


# --- behaviour ------------------------------------------------------------------------


def _cycling(der: Der, t: float, duty: float, period_s: float) -> bool:
    phase = noise(der.seed, 1)
    return ((t / period_s) + phase) % 1.0 < duty


def heat_pump_power(der: Der, t: float, lon: float) -> float:
    h = local_hours(t, lon)
    cold = 0.5 - 0.4 * season(t) + (0.15 if h < 6 or h >= 21 else 0.0)
    duty = min(0.95, max(0.08, cold))
    if _cycling(der, t, duty, 1800.0 + 1200.0 * noise(der.seed, 2)):
        return der.capacity_w * (0.7 + 0.25 * noise(der.seed, int(t // 300)))
    return 15.0


def water_heater_power(der: Der, t: float, lon: float) -> float:
    h = local_hours(t, lon)
    duty = 0.5 if 6 <= h < 8 or 18 <= h < 21 else 0.06
    return der.capacity_w if _cycling(der, t, duty, 2400.0) else 3.0


def lighting_power(der: Der, t: float, lon: float) -> float:
    h = local_hours(t, lon)
    if 6 <= h < 8 or 17 <= h < 23:
        return der.capacity_w * (0.4 + 0.6 * noise(der.seed, int(t // 900)))
    return der.capacity_w * 0.05


def pv_power(der: Der, t: float, lon: float) -> float:
    h = local_hours(t, lon)
    half_day = 6.0 + 2.0 * season(t)  # 16 h of daylight in June, 8 in December
    x = (h - 12.0) / half_day
    if abs(x) >= 1.0:
        return 0.0
    sun = math.cos(x * math.pi / 2) ** 1.5
    peak = 0.55 + 0.3 * season(t)
    # clouds: smooth between values drawn every 10 minutes
    k = t / 600.0
    c0, c1 = noise(der.seed, int(k), 3), noise(der.seed, int(k) + 1, 3)
    cloud = 0.35 + 0.65 * (c0 + (c1 - c0) * (k % 1.0))
    return der.capacity_w * peak * sun * cloud


# battery state of charge through the day: (hour, soc) points, linearly interpolated
_SOC_CURVE = ((0.0, 0.45), (6.0, 0.2), (10.0, 0.2), (15.0, 0.95), (18.0, 0.95), (24.0, 0.45))
BATTERY_HOURS = 2.0  # energy = rated power x 2 h


def battery_soc(der: Der, t: float, lon: float) -> float:
    h = local_hours(t, lon)
    for (h0, s0), (h1, s1) in zip(_SOC_CURVE, _SOC_CURVE[1:], strict=False):
        if h0 <= h < h1:
            return s0 + (s1 - s0) * (h - h0) / (h1 - h0)
    return _SOC_CURVE[0][1]


def battery_power(der: Der, t: float, lon: float) -> float:
    h = local_hours(t, lon)
    for (h0, s0), (h1, s1) in zip(_SOC_CURVE, _SOC_CURVE[1:], strict=False):
        if h0 <= h < h1:
            return der.capacity_w * BATTERY_HOURS * (s1 - s0) / (h1 - h0)
    return 0.0


def battery_available(der: Der, t: float, lon: float) -> float:
    soc = battery_soc(der, t, lon)
    return der.capacity_w * min(1.0, max(0.0, (soc - 0.1) / 0.2))


def _ev_session(der: Der, day: int) -> tuple[float, float] | None:
    """(arrival hour, charging hours) of the day's session, or None on a day without."""
    if noise(der.seed, day, 4) < 0.35:
        return None
    energy_wh = 5000.0 + 25000.0 * noise(der.seed, day, 5)
    return 16.0 + 5.0 * noise(der.seed, day, 6), energy_wh / der.capacity_w


def ev_power(der: Der, t: float, lon: float) -> float:
    day, h = day_index(t, lon), local_hours(t, lon)
    for d, hour in ((day, h), (day - 1, h + 24.0)):
        session = _ev_session(der, d)
        if session is not None and session[0] <= hour < session[0] + session[1]:
            left = session[0] + session[1] - hour
            return der.capacity_w * (1.0 if left > 0.25 else 0.4)
    return 0.0


def load_available(der: Der, t: float, lon: float) -> float:
    """A controllable load can shed what it draws now."""
    return der.kind.power(der, t, lon)


def _hvac_available(der: Der, t: float, lon: float) -> float:
    return max(heat_pump_power(der, t, lon), 0.3 * der.capacity_w)


def _ev_available(der: Der, t: float, lon: float) -> float:
    return der.capacity_w if ev_power(der, t, lon) > 0 else 0.0


HEAT_PUMP = Kind("heat-pump", "Heat_Pump", "heat pump", (3000.0, 5000.0, 7000.0, 9000.0), 0.14,
                 heat_pump_power, _hvac_available, (16.0, 21.0, 26.0, 18.0))
THERMOSTAT = Kind("hvac", "Thermostat", "HVAC thermostat", (2000.0, 3500.0, 5000.0), 0.08,
                  heat_pump_power, _hvac_available, (16.0, 21.0, 26.0, 18.0))
WATER_HEATER = Kind("boiler", "Water_Heater", "hot-water boiler", (2000.0, 3000.0, 4000.0),
                    0.2, water_heater_power, lambda d, t, lon: d.capacity_w,
                    (45.0, 55.0, 65.0, 50.0))
LIGHTING = Kind("lighting", "Interior_Lighting", "lighting", (150.0, 300.0, 600.0), 0.15,
                lighting_power, load_available)
PV = Kind("pv", "PV", "rooftop PV", (4000.0, 6000.0, 8000.0, 10000.0), 0.17,
          pv_power, pv_power)
BATTERY = Kind("battery", "Energy_Storage", "home battery", (3000.0, 5000.0, 8000.0), 0.12,
               battery_power, battery_available)
EVSE = Kind("ev-charger", "EVSE", "EV charger", (3700.0, 7400.0, 11000.0), 0.14,
            ev_power, _ev_available)

KINDS: tuple[Kind, ...] = (HEAT_PUMP, THERMOSTAT, WATER_HEATER, LIGHTING, PV, BATTERY, EVSE)


def _pick_kinds(rng: random.Random, count: int) -> list[Kind]:
    """A household mix: distinct classes first (one HVAC at most), then repeats."""
    pool = list(KINDS)
    out: list[Kind] = []
    while len(out) < count:
        if not pool:
            pool = [k for k in KINDS if k is not THERMOSTAT]
        kind = rng.choices(pool, weights=[k.weight for k in pool])[0]
        out.append(kind)
        pool.remove(kind)
        if kind in (HEAT_PUMP, THERMOSTAT):
            pool = [k for k in pool if k not in (HEAT_PUMP, THERMOSTAT)]
    return out


def make_ders(rng: random.Random, count: int) -> tuple[Der, ...]:
    """``count`` DERs of one household with interned, VEN-unique resource IDs."""
    seen: dict[str, int] = {}
    ders = []
    for kind in _pick_kinds(rng, count):
        seen[kind.key] = seen.get(kind.key, 0) + 1
        resource_id = sys.intern(f"{kind.key}-{seen[kind.key]}")
        ders.append(Der(kind, resource_id, rng.choice(kind.capacities), rng.getrandbits(48)))
    return tuple(ders)


def spread_location(
    rng: random.Random, center: tuple[float, float], radius_km: float
) -> tuple[float, float]:
    """A point uniformly distributed in a disc of ``radius_km`` around ``center``."""
    r = radius_km * math.sqrt(rng.random())
    a = rng.random() * 2 * math.pi
    lat = center[0] + (r * math.cos(a)) / 111.32
    lon = center[1] + (r * math.sin(a)) / (111.32 * math.cos(math.radians(center[0])))
    return round(lat, 6), round(lon, 6)


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine)."""
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin(
        (lo2 - lo1) / 2
    ) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))
