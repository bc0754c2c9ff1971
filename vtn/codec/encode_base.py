"""Shared pieces of the encoders: scalar formatting, element helpers and the building
blocks several services use (eiResponse, itemBase, locations)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from . import messages as m
from .xmlsafe import (
    ITEM_NAMESPACES,
    NS_EMIX,
    NS_OADR,
    NS_POWER,
)

_PREFIX_OF = {NS_POWER: "power", NS_OADR: "oadr", NS_EMIX: "emix"}
# oadrLoadControlState children in XSD order.
_LOAD_CONTROL_ORDER = (
    ("capacity", "oadr:oadrCapacity"),
    ("levelOffset", "oadr:oadrLevelOffset"),
    ("percentOffset", "oadr:oadrPercentOffset"),
    ("setPoint", "oadr:oadrSetPoint"),
)
_POWER_ITEMS = frozenset({"powerReal", "powerApparent", "powerReactive"})
# openleadr's PowerAttributes defaults, used when a power* item lacks them (XSD requires).
_DEFAULT_POWER_ATTRS = (50.0, 230.0, True)


# --- scalar formatting ------------------------------------------------------------------


def esc(s: str) -> str:
    """Escape element text (&, <, > and CR, which parsers would otherwise normalise)."""
    if "&" in s or "<" in s or ">" in s or "\r" in s:
        s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        s = s.replace("\r", "&#13;")
    return s


def fmt_datetime(dt: datetime) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SS(.ffffff)Z``; naive datetimes are taken as UTC."""
    if dt.tzinfo is not None and dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.replace(tzinfo=None).isoformat() + "Z"


@lru_cache(maxsize=512)
def fmt_duration(td: timedelta) -> str:
    """ISO 8601 duration (P1DT2H, PT0S, -PT5M). Sub-second parts are rounded, as the
    XSD pattern admits whole seconds only."""
    if td < timedelta(0):
        return "-" + fmt_duration(-td)
    total = round(td.total_seconds())
    if total == 0:
        return "PT0S"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = f"P{days}D" if days else "P"
    if rest or hours:
        out += "T"
        if hours:
            out += f"{hours}H"
        if minutes:
            out += f"{minutes}M"
        if seconds:
            out += f"{seconds}S"
    return out


def fmt_float(x: float) -> str:
    """xs:float lexical form (INF/-INF/NaN spelled as XSD wants)."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "INF" if x > 0 else "-INF"
    return repr(float(x))


def fmt_decimal(x: float) -> str:
    """xs:decimal lexical form (no exponent allowed)."""
    s = repr(float(x))
    if "e" in s or "E" in s:
        s = format(Decimal(s), "f")
    return s


def fmt_bool(b: bool) -> str:
    return "true" if b else "false"


def _t(tag: str, text: str) -> str:
    return f"<{tag}>{esc(text)}</{tag}>"


def _opt(tag: str, text: str | None) -> str:
    return "" if text is None else f"<{tag}>{esc(text)}</{tag}>"


def _dt_prop(tag: str, dt: datetime) -> str:
    return f"<{tag}><xcal:date-time>{fmt_datetime(dt)}</xcal:date-time></{tag}>"


def _dur_prop(tag: str, td: timedelta) -> str:
    return f"<{tag}><xcal:duration>{fmt_duration(td)}</xcal:duration></{tag}>"


def _properties(dtstart: datetime, duration: timedelta) -> str:
    return (
        "<xcal:properties>"
        + _dt_prop("xcal:dtstart", dtstart)
        + _dur_prop("xcal:duration", duration)
        + "</xcal:properties>"
    )


# --- building blocks --------------------------------------------------------------------


def _ei_response(r: m.EiResponse, tag: str = "ei:eiResponse") -> str:
    return (
        f"<{tag}><ei:responseCode>{int(r.code):03d}</ei:responseCode>"
        f"{_t('ei:responseDescription', r.description)}{_t('pyld:requestID', r.request_id)}"
        f"</{tag}>"
    )


def _item_base(item: m.ItemBase) -> str:
    prefix = item.namespace if item.namespace in ITEM_NAMESPACES else None
    if prefix is None:  # a namespace URI kept from a foreign document
        prefix = _PREFIX_OF.get(item.namespace, "x")
        open_tag = f'<{prefix}:{item.kind} xmlns:{prefix}="{esc(item.namespace)}">'
    else:
        open_tag = f"<{prefix}:{item.kind}>"
    parts = [
        open_tag,
        _t(f"{prefix}:itemDescription", item.description),
        _t(f"{prefix}:itemUnits", item.units),
    ]
    if item.pulse_factor is not None:
        parts.append(f"<oadr:pulseFactor>{fmt_float(item.pulse_factor)}</oadr:pulseFactor>")
    else:
        parts.append(_t("scale:siScaleCode", item.si_scale))
    attrs = (item.hertz, item.voltage, item.ac)
    if attrs != (None, None, None) or item.kind in _POWER_ITEMS:
        hertz, voltage, ac = (
            d if v is None else v for v, d in zip(attrs, _DEFAULT_POWER_ATTRS, strict=True)
        )
        parts.append(
            f"<power:powerAttributes><power:hertz>{fmt_decimal(hertz)}</power:hertz>"
            f"<power:voltage>{fmt_decimal(voltage)}</power:voltage>"
            f"<power:ac>{fmt_bool(ac)}</power:ac></power:powerAttributes>"
        )
    parts.append(f"</{prefix}:{item.kind}>")
    return "".join(parts)


def _service_location(location: tuple[float, float]) -> str:
    """A point as power:serviceLocation: the profile's GML only has polygons, so write a
    degenerate closed ring of four identical "lat lon" positions."""
    lat, lon = location
    pos = f"{fmt_float(lat)} {fmt_float(lon)}"
    return (
        "<power:serviceLocation><gml:FeatureCollection><gml:location><gml:Polygon>"
        f"<gml:exterior><gml:LinearRing><gml:posList>{pos} {pos} {pos} {pos}</gml:posList>"
        "</gml:LinearRing></gml:exterior></gml:Polygon></gml:location>"
        "</gml:FeatureCollection></power:serviceLocation>"
    )
