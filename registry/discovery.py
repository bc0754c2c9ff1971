"""Typed DER discovery: the query model, the patch model and database-neutral planning.

The API validates query strings straight into :class:`DiscoveryQuery` and derives its
OpenAPI parameters from the same model, so what is documented is what is accepted.
Unknown parameters, operators and sort keys fail validation and never reach a database.
Adapters compile a :class:`Plan` (effective sort keys, decoded cursor) to their own query
language: ``registry.sqlite.discovery`` for SQLite, ``registry.mongo.discovery`` for MongoDB.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from registry.limits import MAX_INT64, bounded_list, bounded_time, storable_scalar
from registry.models import Der, DeviceClass, DeviceType, Liveness, Location

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)

# every field a client may sort on; each maps to one whitelisted column / expression
SORT_FIELDS = (
    "device_id",
    "device_name",
    "ven_id",
    "device_class",
    "device_type",
    "liveness",
    "max_capacity",
    "available_capacity",
    "updated_at",
    "distance_m",
)
# what ``fields=`` may project (the DER document's top-level keys plus the distance)
PROJECTABLE = (*Der.model_fields, "distance_m")

SortKey = Literal[  # type: ignore[valid-type]
    tuple(k for f in SORT_FIELDS for k in (f, "-" + f))
]
FieldName = Literal[tuple(PROJECTABLE)]  # type: ignore[valid-type]

_LIST_FIELDS = (
    "device_class",
    "device_type",
    "ven_id",
    "aggregator_id",
    "account_id",
    "liveness",
    "near",
    "bbox",
    "sort",
    "fields",
)


def _split(value: Any) -> Any:
    """Query strings carry lists comma-separated (OpenAPI style=form, explode=false);
    at most MAX_LIST_ITEMS values per list (registry.limits)."""
    if isinstance(value, str):
        return bounded_list([v.strip() for v in value.split(",") if v.strip() != ""])
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return bounded_list([p for v in value for p in _split(v)])
    return bounded_list(value)


def _check_point(lat: float, lon: float) -> None:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise PydanticCustomError("point", "latitude must be in -90..90, longitude in -180..180")


class DiscoveryQuery(BaseModel):
    """Filter, sort and page over DERs. Lists are comma-separated in query strings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_class: list[DeviceClass] | None = Field(None, description="any of these classes")
    device_type: list[DeviceType] | None = Field(None, description="any of these types")
    ven_id: list[str] | None = Field(None, description="DERs of any of these VENs")
    aggregator_id: list[str] | None = None
    account_id: list[str] | None = None
    availability: bool | None = None
    dr_availability: bool | None = None
    marketplace_availability: bool | None = None
    liveness: list[Liveness] | None = None
    max_capacity_min: FiniteFloat | None = Field(None, description="W, inclusive")
    max_capacity_max: FiniteFloat | None = Field(None, description="W, inclusive")
    available_capacity_min: FiniteFloat | None = Field(None, description="W, inclusive")
    available_capacity_max: FiniteFloat | None = Field(None, description="W, inclusive")
    updated_since: datetime | None = Field(
        None, description="updated_at >= this (ISO 8601; no offset: UTC; from 1970)"
    )
    available_at: datetime | None = Field(
        None, description="available for DR at this instant (ISO 8601): availability and "
        "dr_availability true and no optOut schedule window of the DER's VEN covering it"
    )
    q: str | None = Field(
        None, min_length=1, max_length=100, description="case-insensitive substring of device_name"
    )
    near: list[float] | None = Field(
        None, min_length=2, max_length=2, description="lat,lon of the centre (needs radius_m)"
    )
    radius_m: float | None = Field(
        None, gt=0, le=2_000_000, validate_default=True, description="metres around near"
    )
    bbox: list[float] | None = Field(
        None, min_length=4, max_length=4, description="minLat,minLon,maxLat,maxLon"
    )
    sort: list[SortKey] = Field(  # type: ignore[valid-type]
        default_factory=list,
        validate_default=True,
        description="comma-separated keys, '-' for descending; default device_id "
        "(distance_m with near)",
    )
    fields: list[FieldName] | None = Field(  # type: ignore[valid-type]
        None, description="only these top-level fields in each item"
    )
    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=2000, description="next page token")
    total: bool = Field(False, description="also count all matches (slower)")

    @field_validator(*_LIST_FIELDS, mode="before")
    @classmethod
    def _comma_lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("updated_since", "available_at")
    @classmethod
    def _since(cls, value: datetime | None) -> datetime | None:
        return bounded_time(value)

    @field_validator("near")
    @classmethod
    def _near(cls, value: list[float] | None) -> list[float] | None:
        if value is not None:
            _check_point(value[0], value[1])
        return value

    @field_validator("radius_m")
    @classmethod
    def _radius(cls, value: float | None, info: ValidationInfo) -> float | None:
        has_near = info.data.get("near") is not None
        if has_near and value is None:
            raise PydanticCustomError("missing", "radius_m is required with near")
        if value is not None and not has_near and "near" in info.data:
            raise PydanticCustomError("unexpected", "radius_m needs near=lat,lon")
        return value

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, value: list[float] | None) -> list[float] | None:
        if value is not None:
            lat0, lon0, lat1, lon1 = value
            _check_point(lat0, lon0)
            _check_point(lat1, lon1)
            if lat0 > lat1:
                raise PydanticCustomError("bbox", "minLat must not exceed maxLat")
        return value

    @field_validator("sort")
    @classmethod
    def _sort(cls, value: list[str], info: ValidationInfo) -> list[str]:
        names = [k.lstrip("-") for k in value]
        if len(set(names)) != len(names):
            raise PydanticCustomError("sort", "each sort key may appear once")
        if "distance_m" in names and info.data.get("near") is None:
            raise PydanticCustomError("sort", "sorting by distance_m needs near=lat,lon")
        return value


class DerPatch(BaseModel):
    """User-owned DER fields a client may change (absent fields stay as they are)."""

    model_config = ConfigDict(extra="forbid")

    availability: bool | None = None
    dr_availability: bool | None = None
    marketplace_availability: bool | None = None
    device_name: str | None = Field(None, min_length=1, max_length=200)
    location: Location | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (an explicit null location clears it)."""
        out = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if value is None and name != "location":
                raise ValueError(f"{name} may not be null")
            out[name] = value
        return out


AVAILABILITY_FLAGS = ("availability", "dr_availability", "marketplace_availability")


def patch_diff(der: Der, changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What a patch really changes, as logged in der.changed: {field: {from, to}}."""

    def plain(value: Any) -> Any:
        return value.model_dump() if hasattr(value, "model_dump") else value

    return {
        k: {"from": plain(getattr(der, k)), "to": plain(v)}
        for k, v in changes.items()
        if getattr(der, k) != v
    }


class LogQuery(BaseModel):
    """Filter over the event log; ``after`` is the last seq the client has seen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: list[str] | None = Field(None, description="any of these kinds, e.g. der.changed")
    ven_id: str | None = None
    device_id: str | None = None
    after: int = Field(0, ge=0, le=MAX_INT64, description="only entries with seq > after")
    limit: int = Field(100, ge=1, le=1000)

    @field_validator("kind", mode="before")
    @classmethod
    def _comma_lists(cls, value: Any) -> Any:
        return _split(value)


# --- results -------------------------------------------------------------------------


@dataclass(slots=True)
class Hit:
    der: Der
    distance_m: float | None = None


@dataclass(slots=True)
class Page:
    items: list[Hit]
    next_cursor: str | None = None
    total: int | None = None


@dataclass(slots=True)
class DerBrief:
    """The few DER fields a view offer or status report needs, read without the document.

    ``status`` is the stored oadrPayloadResourceStatus as plain JSON (online,
    manual_override, load_control: {kind: {current, min, max, normal}}).
    """

    device_id: str
    ven_id: str
    resource_id: str
    device_class: str
    liveness: str
    status: dict[str, Any]
    max_capacity: float | None
    available_capacity: float | None
    lat: float | None
    lon: float | None

    @classmethod
    def of(cls, der: Der) -> DerBrief:
        loc = der.location
        return cls(
            der.device_id, der.ven_id, der.resource_id, der.device_class.value,
            der.liveness.value, der.status.model_dump(mode="json"), der.max_capacity,
            der.available_capacity, loc.lat if loc else None, loc.lon if loc else None,
        )


def unpaged(query: DiscoveryQuery) -> DiscoveryQuery:
    """The query's filters over all matches in device_id order (bulk reads, not the API)."""
    return query.model_copy(update={"limit": 1 << 62, "cursor": None, "sort": ["device_id"],
                                    "fields": None, "total": False})


@dataclass(slots=True)
class DerStats:
    total: int
    by_class: dict[str, int] = field(default_factory=dict)
    by_liveness: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)


# --- planning ------------------------------------------------------------------------


class CursorError(ValueError):
    """The cursor is not one this query produced."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What every adapter needs: sort keys (field, descending) ending in device_id."""

    sort: tuple[tuple[str, bool], ...]
    after: tuple[Any, ...] | None  # sort values of the last row of the previous page
    signature: str


def plan(query: DiscoveryQuery) -> Plan:
    keys: list[tuple[str, bool]] = [(k.lstrip("-"), k.startswith("-")) for k in query.sort]
    if not keys and query.near is not None:
        keys = [("distance_m", False)]
    if "device_id" not in [k for k, _ in keys]:
        keys.append(("device_id", False))  # unique tie-breaker: stable keyset pages
    else:
        keys = keys[: [k for k, _ in keys].index("device_id") + 1]
    sig_src = json.dumps([keys, query.near], separators=(",", ":"))
    signature = hashlib.sha256(sig_src.encode()).hexdigest()[:12]
    after = decode_cursor(query.cursor, signature, len(keys)) if query.cursor else None
    return Plan(tuple(keys), after, signature)


def encode_cursor(signature: str, values: list[Any]) -> str:
    raw = json.dumps({"s": signature, "k": values}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, signature: str, n_keys: int) -> tuple[Any, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        values = data["k"]
        ok = data["s"] == signature and isinstance(values, list) and len(values) == n_keys
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise CursorError("malformed cursor") from exc
    if not ok:
        raise CursorError("cursor belongs to a different sort or geo centre")
    if not all(storable_scalar(v) for v in values):
        raise CursorError("malformed cursor")
    return tuple(values)


def haversine_m(lat1: float | None, lon1: float | None, lat2: float, lon2: float) -> float | None:
    """Great-circle distance in metres (None for a DER without a location)."""
    if lat1 is None or lon1 is None:
        return None
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def radius_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lat/lon box that surely contains the circle (prefilter for an index)."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) * 1.0001
    lat0, lat1 = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    if lat0 <= -90.0 or lat1 >= 90.0:
        return lat0, -180.0, lat1, 180.0
    # widest longitude span of the circle is at the latitude nearest a pole
    cos_max = min(math.cos(math.radians(lat0)), math.cos(math.radians(lat1)))
    ratio = math.sin(radius_m / EARTH_RADIUS_M) / max(cos_max, 1e-12)
    if ratio >= 1.0:
        return lat0, -180.0, lat1, 180.0
    dlon = math.degrees(math.asin(ratio)) * 1.0001
    return lat0, lon - dlon, lat1, lon + dlon
