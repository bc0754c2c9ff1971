"""Eve's ``where`` / ``sort`` / ``projection`` -> :class:`DiscoveryQuery`, whitelisted.

``where`` is MongoDB-style JSON. Each field accepts only the operators listed in
``OPERATORS``; the result is the same typed discovery query ``/api/v1/ders`` validates,
so each adapter compiles it (tenant scope first) and nothing from ``where`` reaches a
database as is. Anything else is a :class:`WhereError` naming the operator or field.
``$regex`` is accepted on ``device_name`` only as a literal of at most 100 characters
(no metacharacters) and means a case-insensitive substring.
"""

from __future__ import annotations

import ast
import json
import math
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import ValidationError

from registry.discovery import EARTH_RADIUS_M, DiscoveryQuery
from registry.flexcoop.mapping import FIELDS, FLEX_TO_CLASSES, META
from registry.limits import MAX_JSON_DEPTH, MAX_LIST_ITEMS, too_deep
from registry.models import DeviceClass, DeviceType

MAX_WHERE_CHARS = 8192
MAX_SORT_CHARS = 512
MAX_REGEX = 100
CMP = ("$gt", "$gte", "$lt", "$lte")
SETS = ("$eq", "$in", "$nin", "$ne")
OPERATORS: dict[str, tuple[str, ...]] = {
    "device_class": SETS,
    "device_type": SETS,
    "ven_id": ("$eq", "$in"),
    "aggregator_id": ("$eq", "$in"),
    "account_id": ("$eq", "$in"),
    "availability": SETS,
    "marketplace_availability": SETS,
    "dr_availability": SETS,
    "max_capacity": ("$eq", *CMP, "$exists"),
    "available_capacity": ("$eq", *CMP, "$exists"),
    "device_name": ("$regex", "$options"),
    "location": ("$near", "$nearSphere", "$geoWithin", "$exists"),
    "_updated": ("$gt", "$gte"),
}
SORTABLE = {
    "device_id": "device_id", "_id": "device_id", "device_name": "device_name",
    "ven_id": "ven_id", "device_type": "device_type", "max_capacity": "max_capacity",
    "available_capacity": "available_capacity", "_updated": "updated_at",
}
_REGEX_META = re.compile(r"[\\^$.|?*+()\[\]{}]")
_FLAG = {"yes": True, "no": False}


class WhereError(ValueError):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def _bad(message: str) -> WhereError:
    return WhereError("where", message)


@dataclass
class _Acc:
    """Constraints collected so far (intersected by $and and sibling fields)."""

    sets: dict[str, set[Any]] = field(default_factory=dict)
    ranges: dict[str, list[float]] = field(default_factory=dict)
    q: str | None = None
    near: tuple[float, float, float] | None = None
    bbox: list[float] | None = None
    since: datetime | None = None
    empty: bool = False

    def restrict(self, name: str, values: set[Any]) -> None:
        self.sets[name] = self.sets[name] & values if name in self.sets else set(values)

    def bound(self, name: str, lo: float | None, hi: float | None) -> None:
        cur = self.ranges.setdefault(name, [-sys.float_info.max, sys.float_info.max])
        if lo is not None:
            cur[0] = max(cur[0], lo)
        if hi is not None:
            cur[1] = min(cur[1], hi)


def _domain(name: str) -> set[Any] | None:
    if name == "device_class":
        return set(DeviceClass)
    if name == "device_type":
        return set(DeviceType)
    if name in ("availability", "marketplace_availability", "dr_availability"):
        return {True, False}
    return None


def _values(name: str, value: Any) -> set[Any]:
    """One where value of a set field -> the set of stored values it stands for."""
    if not isinstance(value, str):
        raise _bad(f"{name}: expected a string, not {type(value).__name__}")
    if name == "device_class":
        if value not in FLEX_TO_CLASSES:
            return set()
        return set(FLEX_TO_CLASSES[value])
    if name == "device_type":
        return {DeviceType(value)} if value in {t.value for t in DeviceType} else set()
    if name.endswith("availability"):
        return {_FLAG[value]} if value in _FLAG else set()
    return {value}


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        out = float(value)
    except OverflowError:  # a JSON integer beyond float range
        return None
    return out if math.isfinite(out) else None


def _number(name: str, op: str, value: Any) -> float:
    out = _finite(value)
    if out is None:
        raise _bad(f"{name}: {op} needs a finite number")
    return out


def _point(value: Any, what: str) -> tuple[float, float]:
    """GeoJSON [lon, lat] -> (lat, lon)."""
    nums = [_finite(v) for v in value] if isinstance(value, list) else []
    if len(nums) != 2 or None in nums:
        raise _bad(f"location: {what} needs [longitude, latitude]")
    lon, lat = nums[0], nums[1]
    assert lon is not None and lat is not None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise _bad("location: latitude must be in -90..90, longitude in -180..180")
    return lat, lon


def _geometry(spec: Any, kind: str) -> Any:
    if not isinstance(spec, dict) or spec.get("type") != kind or "coordinates" not in spec:
        raise _bad(f"location: $geometry must be a GeoJSON {kind}")
    extra = set(spec) - {"type", "coordinates", "crs"}
    if extra:
        raise _bad(f"location: unknown $geometry member {sorted(extra)[0]}")
    return spec["coordinates"]


def _near(acc: _Acc, op: str, spec: Any) -> None:
    if isinstance(spec, list):  # legacy [lon, lat] needs $maxDistance beside it: unsupported
        raise _bad(f"location: {op} takes {{$geometry: Point, $maxDistance: metres}}")
    if not isinstance(spec, dict):
        raise _bad(f"location: {op} takes an object")
    unknown = set(spec) - {"$geometry", "$maxDistance", "$minDistance"}
    if unknown:
        raise _bad(f"location: operator {sorted(unknown)[0]} is not supported in {op}")
    if "$minDistance" in spec:
        raise _bad("location: operator $minDistance is not supported")
    if "$maxDistance" not in spec:
        raise _bad(f"location: {op} needs $maxDistance (metres)")
    lat, lon = _point(_geometry(spec.get("$geometry"), "Point"), "$geometry")
    radius = _number("location", "$maxDistance", spec["$maxDistance"])
    if not 0 < radius <= 2_000_000:
        raise _bad("location: $maxDistance must be in (0, 2000000] metres")
    if acc.near is not None:
        raise _bad(f"location: only one {op} per query")
    acc.near = (lat, lon, radius)


def _within(acc: _Acc, spec: Any) -> None:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise _bad("location: $geoWithin takes one of $geometry (Polygon), $box, $centerSphere")
    (op, arg), = spec.items()
    if op == "$centerSphere":
        if not isinstance(arg, list) or len(arg) != 2:
            raise _bad("location: $centerSphere takes [[longitude, latitude], radians]")
        lat, lon = _point(arg[0], "$centerSphere")
        radius = _number("location", "$centerSphere", arg[1]) * EARTH_RADIUS_M
        if not 0 < radius <= 2_000_000:
            raise _bad("location: $centerSphere radius must be in (0, 2000 km]")
        if acc.near is not None:
            raise _bad("location: only one circle per query")
        acc.near = (lat, lon, radius)
        return
    if op == "$box":
        if not isinstance(arg, list) or len(arg) != 2:
            raise _bad("location: $box takes [[minLon, minLat], [maxLon, maxLat]]")
        corners = [_point(arg[0], "$box"), _point(arg[1], "$box")]
    elif op == "$geometry":
        ring = _geometry(arg, "Polygon")
        corners = _rectangle(ring)
    else:
        raise _bad(f"location: operator {op} is not supported in $geoWithin")
    (lat0, lon0), (lat1, lon1) = corners
    box = [min(lat0, lat1), lon0, max(lat0, lat1), lon1]
    if acc.bbox is not None:
        raise _bad("location: only one $geoWithin box per query")
    acc.bbox = box


def _rectangle(ring: Any) -> list[tuple[float, float]]:
    """An axis-aligned GeoJSON Polygon (one closed ring of 5 positions) -> two corners."""
    if not isinstance(ring, list) or len(ring) != 1 or not isinstance(ring[0], list):
        raise _bad("location: $geoWithin supports Polygons with one ring")
    pts = [_point(p, "Polygon") for p in ring[0]]
    if len(pts) != 5 or pts[0] != pts[-1]:
        raise _bad("location: $geoWithin supports axis-aligned rectangles "
                   "(5 positions, closed)")
    lats = sorted({p[0] for p in pts})
    lons = sorted({p[1] for p in pts})
    corners = {(a, b) for a in lats for b in lons}
    if len(lats) != 2 or len(lons) != 2 or set(pts) != corners:
        raise _bad("location: $geoWithin supports axis-aligned rectangles only")
    return [(lats[0], lons[0]), (lats[1], lons[1])]


def _time(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise _bad("_updated: expected a date (RFC 1123 or ISO 8601)")
    try:
        t = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            t = datetime.fromisoformat(value)
        except ValueError:
            raise _bad("_updated: expected a date (RFC 1123 or ISO 8601)") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _field(acc: _Acc, name: str, cond: Any) -> None:
    if name not in OPERATORS:
        if name.startswith("$"):
            raise _bad(f"operator {name} is not supported")
        raise _bad(f"field {name} cannot be filtered on")
    allowed = OPERATORS[name]
    ops = cond if isinstance(cond, dict) and any(k.startswith("$") for k in cond) else None
    if ops is None:
        ops = {"$eq": cond}
    for op in ops:
        if not op.startswith("$"):
            raise _bad(f"{name}: cannot mix operators and plain fields")
        if op not in allowed:
            raise _bad(f"operator {op} is not supported on {name}")
    if name == "location":
        for op, arg in ops.items():
            if op in ("$near", "$nearSphere"):
                _near(acc, op, arg)
            elif op == "$geoWithin":
                _within(acc, arg)
            elif arg is True:  # $exists: every DER with a location
                acc.bbox = acc.bbox or [-90.0, -180.0, 90.0, 180.0]
            else:
                raise _bad("location: only $exists: true is supported")
        return
    if name == "device_name":
        _regex(acc, ops)
        return
    if name == "_updated":
        for arg in ops.values():
            t = _time(arg)
            acc.since = max(acc.since, t) if acc.since else t
        return
    if name in ("max_capacity", "available_capacity"):
        for op, arg in ops.items():
            if op == "$exists":
                if arg is not True:
                    raise _bad(f"{name}: only $exists: true is supported")
                acc.bound(name, None, None)
                continue
            v = _number(name, op, arg)
            lo = {"$eq": v, "$gte": v, "$gt": math.nextafter(v, math.inf)}.get(op)
            hi = {"$eq": v, "$lte": v, "$lt": math.nextafter(v, -math.inf)}.get(op)
            acc.bound(name, lo, hi)
        return
    for op, arg in ops.items():
        if op in ("$in", "$nin"):
            if not isinstance(arg, list) or len(arg) > MAX_LIST_ITEMS:
                raise _bad(f"{name}: {op} takes a list of at most {MAX_LIST_ITEMS} values")
            vals = set().union(*(_values(name, a) for a in arg)) if arg else set()
        else:
            vals = _values(name, arg)
        if op in ("$nin", "$ne"):
            domain = _domain(name)
            assert domain is not None  # only fields with a known domain allow these
            vals = domain - vals
        acc.restrict(name, vals)


def _regex(acc: _Acc, ops: dict[str, Any]) -> None:
    pattern, options = ops.get("$regex"), ops.get("$options", "i")
    if not isinstance(pattern, str) or not 1 <= len(pattern) <= MAX_REGEX:
        raise _bad(f"device_name: $regex takes a string of 1..{MAX_REGEX} characters")
    if _REGEX_META.search(pattern):
        raise _bad("device_name: $regex accepts a literal substring only (no metacharacters)")
    if options not in ("", "i"):
        raise _bad("device_name: $options may only be 'i'")
    if acc.q is not None:
        raise _bad("device_name: one $regex per query")
    acc.q = pattern


def _walk(acc: _Acc, node: Any) -> None:
    if not isinstance(node, dict):
        raise _bad("where must be a JSON object")
    for key, value in node.items():
        if key == "$and":
            if not isinstance(value, list) or not value:
                raise _bad("$and takes a non-empty list")
            for part in value:
                _walk(acc, part)
        elif key == "$or":
            _or(acc, value)
        else:
            _field(acc, key, value)


def _or(acc: _Acc, branches: Any) -> None:
    """$or over one set-valued field (a union); anything wider is not supported."""
    if not isinstance(branches, list) or not branches:
        raise _bad("$or takes a non-empty list")
    union: set[Any] = set()
    names: set[str] = set()
    for part in branches:
        sub = _Acc()
        _walk(sub, part)
        if (sub.ranges or sub.q or sub.near or sub.bbox or sub.since
                or len(sub.sets) != 1):
            raise _bad("operator $or is supported only over one of device_class, device_type, "
                       "ven_id, aggregator_id, account_id or the availabilities")
        (name, vals), = sub.sets.items()
        names.add(name)
        union |= vals
    if len(names) != 1:
        raise _bad("operator $or is supported only over one field at a time")
    acc.restrict(names.pop(), union)


def parse_json(param: str, text: str, limit: int) -> Any:
    if len(text) > limit:
        raise WhereError(param, f"{param} is longer than {limit} characters")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise WhereError(param, f"{param} is not JSON") from None
    if too_deep(value, MAX_JSON_DEPTH):
        raise WhereError(param, f"{param} is nested too deep")
    return value


def compile_where(text: str | None) -> tuple[dict[str, Any], bool]:
    """where -> (DiscoveryQuery keyword arguments, matches-nothing flag)."""
    acc = _Acc()
    if text:
        _walk(acc, parse_json("where", text, MAX_WHERE_CHARS))
    kw: dict[str, Any] = {}
    for name, vals in acc.sets.items():
        if not vals:
            return {}, True
        if name.endswith("availability"):
            if len(vals) == 1:
                kw[name] = next(iter(vals))
        elif vals != _domain(name):
            kw[name] = sorted(str(v) for v in vals)
    for name, (lo, hi) in acc.ranges.items():
        if lo > hi:
            return {}, True
        kw[f"{name}_min"], kw[f"{name}_max"] = lo, hi
    if acc.q:
        kw["q"] = acc.q
    if acc.near:
        kw["near"], kw["radius_m"] = [acc.near[0], acc.near[1]], acc.near[2]
    if acc.bbox:
        kw["bbox"] = acc.bbox
    if acc.since:
        kw["updated_since"] = acc.since
    return kw, False


def compile_sort(text: str | None) -> list[str]:
    """Eve's sort forms: ``[("max_capacity", -1)]``, ``[["f", 1]]`` or ``-max_capacity,f``."""
    if not text:
        return []
    if len(text) > MAX_SORT_CHARS:
        raise WhereError("sort", f"sort is longer than {MAX_SORT_CHARS} characters")
    pairs: list[tuple[str, int]] = []
    if text.lstrip().startswith("["):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise WhereError("sort", "sort is not a list of (field, 1|-1) pairs") from None
        if not isinstance(value, list | tuple):
            raise WhereError("sort", "sort is not a list of (field, 1|-1) pairs")
        for item in value:
            if (not isinstance(item, list | tuple) or len(item) != 2
                    or not isinstance(item[0], str) or item[1] not in (1, -1)):
                raise WhereError("sort", "sort is not a list of (field, 1|-1) pairs")
            pairs.append((item[0], item[1]))
    else:
        for part in text.split(","):
            part = part.strip()
            if part:
                pairs.append((part.lstrip("-"), -1 if part.startswith("-") else 1))
    out = []
    for name, direction in pairs:
        if name not in SORTABLE:
            raise WhereError("sort", f"cannot sort on {name} (sortable: {', '.join(SORTABLE)})")
        out.append(("-" if direction < 0 else "") + SORTABLE[name])
    return out


def compile_projection(text: str | None) -> dict[str, bool] | None:
    if not text:
        return None
    value = parse_json("projection", text, MAX_SORT_CHARS)
    if not isinstance(value, dict):
        raise WhereError("projection", "projection must be a JSON object")
    out: dict[str, bool] = {}
    for name, flag in value.items():
        if name not in FIELDS and name not in META:
            raise WhereError("projection", f"unknown field {name}")
        if flag not in (0, 1) or (isinstance(flag, float)):
            raise WhereError("projection", f"{name}: use 1 (include) or 0 (exclude)")
        out[name] = bool(flag)
    plain = {v for k, v in out.items() if k not in META}
    if len(plain) > 1:
        raise WhereError("projection", "projection cannot mix inclusion and exclusion")
    return out


def discovery(where: str | None, sort: str | None, limit: int, *, total: bool = True,
              cursor: str | None = None) -> DiscoveryQuery | None:
    """The typed query for an Eve request, or None when the filter matches nothing."""
    kw, empty = compile_where(where)
    if empty:
        return None
    kw["sort"] = compile_sort(sort)
    try:
        return DiscoveryQuery.model_validate(
            {**kw, "limit": limit, "total": total, "cursor": cursor})
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        raise _bad(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}") from None
