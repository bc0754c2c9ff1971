"""Our DER documents as FLEXCoop ``devices`` items (the seed's Cerberus schema) and back.

FLEXCoop knows four device classes; ours beyond them map to ``otherLoad`` (their kind
stays visible in ``device_type``: pvSystem is Generation, storageDevice is Storage).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from email.utils import format_datetime
from typing import Any

from registry.models import Der, DeviceClass, Location

FLEX_CLASSES = ("hvacDevice", "lightingLoad", "dhwDevice", "otherLoad")
# ours -> FLEXCoop
CLASS_TO_FLEX: dict[DeviceClass, str] = {
    DeviceClass.HVAC: "hvacDevice",
    DeviceClass.LIGHTING: "lightingLoad",
    DeviceClass.DHW: "dhwDevice",
    DeviceClass.OTHER: "otherLoad",
    DeviceClass.PV: "otherLoad",
    DeviceClass.STORAGE: "otherLoad",
    DeviceClass.EV: "otherLoad",
}
# FLEXCoop -> the set of ours it stands for
FLEX_TO_CLASSES: dict[str, frozenset[DeviceClass]] = {
    f: frozenset(c for c, g in CLASS_TO_FLEX.items() if g == f) for f in FLEX_CLASSES
}
YES_NO = {True: "yes", False: "no"}
# every field of the seed's schema plus Eve's meta fields (what projection may name)
FIELDS = (
    "device_id", "device_name", "status", "account_id", "ven_id", "aggregator_id",
    "device_class", "availability", "marketplace_availability", "dr_availability",
    "location", "device_type", "max_capacity", "available_capacity",
)
META = ("_id", "_etag", "_updated", "_created")


def etag_of(der: Der) -> str:
    """Eve-style opaque ETag: a hash of the document's identity and version."""
    return hashlib.sha1(f"{der.device_id}:{der.version}".encode()).hexdigest()


def http_date(value: Any) -> str:
    return format_datetime(value, usegmt=True)


def geojson(loc: Location | None) -> dict[str, Any] | None:
    if loc is None:
        return None
    return {"type": "Point", "coordinates": [loc.lon, loc.lat]}


def location_of(value: Any) -> Location | None | dict[str, Any]:
    """A GeoJSON Point -> Location input ({lat, lon}); anything else is returned as is
    (so the caller's validation reports it)."""
    if isinstance(value, dict) and value.get("type") == "Point":
        coords = value.get("coordinates")
        if (isinstance(coords, list) and len(coords) == 2
                and all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords)):
            return {"lat": coords[1], "lon": coords[0]}  # ranges: Location validates
        raise ValueError("a GeoJSON Point has coordinates [longitude, latitude]")
    return value  # type: ignore[no-any-return]


def _status(der: Der) -> dict[str, Any]:
    st = der.status
    out: dict[str, Any] = {}
    for kind, lc in st.load_control.items():
        low = kind.lower()
        if "setpoint" in low:
            out["setPoint"] = lc.current
        elif "fanspeed" in low:
            out["x-fanspeed"] = lc.current
        elif "leveloffset" in low and float(lc.current).is_integer() and 1 <= lc.current <= 5:
            out["mode"] = str(int(lc.current))
    if st.online is not None:
        out["operationState"] = "1" if st.online else "0"
    return out


GETTERS: dict[str, Callable[[Der], Any]] = {
    "_id": lambda d: d.device_id,
    "device_id": lambda d: d.device_id,
    "device_name": lambda d: d.device_name,
    "status": _status,
    "account_id": lambda d: d.account_id,
    "ven_id": lambda d: d.ven_id,
    "aggregator_id": lambda d: d.aggregator_id,
    "device_class": lambda d: CLASS_TO_FLEX[d.device_class],
    "availability": lambda d: YES_NO[d.availability],
    "marketplace_availability": lambda d: YES_NO[d.marketplace_availability],
    "dr_availability": lambda d: YES_NO[d.dr_availability],
    "location": lambda d: geojson(d.location),
    "device_type": lambda d: d.device_type.value,
    "max_capacity": lambda d: d.max_capacity,
    "available_capacity": lambda d: d.available_capacity,
    "_updated": lambda d: http_date(d.updated_at),
    "_created": lambda d: http_date(d.created_at),
    "_etag": etag_of,
}


def selected(projection: dict[str, bool] | None) -> tuple[str, ...]:
    """The item fields an Eve projection keeps (inclusive or exclusive); meta fields stay."""
    if not projection:
        return tuple(GETTERS)
    if any(projection.values()):
        return tuple(k for k in GETTERS if projection.get(k) or k in META)
    return tuple(k for k in GETTERS if k in META or projection.get(k, True))


def device(der: Der, fields: tuple[str, ...] = tuple(GETTERS)) -> dict[str, Any]:
    """The FLEXCoop item for one DER (``fields`` from :func:`selected`); nulls left out."""
    out = {}
    for name in fields:
        value = GETTERS[name](der)
        if value is not None:
            out[name] = value
    return out
