"""The OSB registration profile: how METADATA reports and status payloads become DERs.

Documented for integrators in docs/osb-profile.md; keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from registry.models import (
    Der,
    DerStatus,
    DeviceClass,
    DeviceType,
    LoadControl,
    Location,
    Telemetry,
    Ven,
)
from vtn.codec import messages as m

# reportSubject/endDeviceAsset/mrid -> device class (case-insensitive, '-' and ' ' = '_')
MRID_CLASSES: dict[str, DeviceClass] = {
    "thermostat": DeviceClass.HVAC,
    "hvac": DeviceClass.HVAC,
    "heat_pump": DeviceClass.HVAC,
    "strip_heater": DeviceClass.HVAC,
    "baseboard_heater": DeviceClass.HVAC,
    "water_heater": DeviceClass.DHW,
    "hot_water": DeviceClass.DHW,
    "boiler": DeviceClass.DHW,
    "interior_lighting": DeviceClass.LIGHTING,
    "exterior_lighting": DeviceClass.LIGHTING,
    "lighting": DeviceClass.LIGHTING,
    "pv": DeviceClass.PV,
    "generation_systems": DeviceClass.PV,
    "smart_inverter": DeviceClass.PV,
    "energy_storage": DeviceClass.STORAGE,
    "resu": DeviceClass.STORAGE,
    "battery": DeviceClass.STORAGE,
    "electric_vehicle": DeviceClass.EV,
    "evse": DeviceClass.EV,
    "ev_charger": DeviceClass.EV,
    "pool_pump": DeviceClass.OTHER,
    "smart_appliance": DeviceClass.OTHER,
    "load_control_switch": DeviceClass.OTHER,
    "irrigation_pump": DeviceClass.OTHER,
    "energy_manager": DeviceClass.OTHER,
    "simple_misc": DeviceClass.OTHER,
}

CLASS_TYPES: dict[DeviceClass, DeviceType] = {
    DeviceClass.PV: DeviceType.GENERATION,
    DeviceClass.STORAGE: DeviceType.STORAGE,
}

SI_SCALE: dict[str, float] = {
    "p": 1e-12,
    "n": 1e-9,
    "micro": 1e-6,
    "m": 1e-3,
    "c": 1e-2,
    "d": 1e-1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "none": 1.0,
}

# units whose values are power and can be normalised to W
POWER_UNITS = {"W": 1.0, "VA": 1.0, "VAR": 1.0, "var": 1.0}


def device_class_of(mrids: list[str]) -> DeviceClass:
    for mrid in mrids:
        key = mrid.strip().lower().replace("-", "_").replace(" ", "_")
        if key in MRID_CLASSES:
            return MRID_CLASSES[key]
    return DeviceClass.OTHER


def to_watts(value: float, units: str | None, si_scale: str | None) -> float:
    """Normalise a power value to W using itemUnits and siScaleCode (unknown: as-is)."""
    factor = SI_SCALE.get(si_scale or "none", 1.0)
    return value * factor * POWER_UNITS.get(units or "W", 1.0)


@dataclass(slots=True)
class ResourceDescription:
    """Everything a METADATA registration says about one resource."""

    resource_id: str
    mrids: list[str] = field(default_factory=list)
    telemetry: list[Telemetry] = field(default_factory=list)
    location: tuple[float, float] | None = None


def describe_resources(reports: list[m.Report]) -> dict[str, ResourceDescription]:
    """Group the report descriptions of an oadrRegisterReport by resourceID."""
    out: dict[str, ResourceDescription] = {}
    for report in reports:
        for d in report.descriptions:
            if d.resource_id is None:
                continue  # VEN-level telemetry (a meter), not a DER
            res = out.setdefault(d.resource_id, ResourceDescription(d.resource_id))
            for mrid in d.subject_mrids:
                if mrid not in res.mrids:
                    res.mrids.append(mrid)
            if d.location is not None and res.location is None:
                res.location = d.location
            res.telemetry.append(telemetry_of(report, d))
    return out


def telemetry_of(report: m.Report, d: m.ReportDescription) -> Telemetry:
    sr = d.sampling_rate
    return Telemetry(
        r_id=d.r_id,
        report_specifier_id=report.report_specifier_id,
        report_name=report.report_name,
        report_type=d.report_type,
        reading_type=d.reading_type,
        item_kind=d.item.kind if d.item else None,
        item_description=d.item.description if d.item else None,
        units=d.item.units if d.item else None,
        si_scale=d.item.si_scale if d.item else None,
        min_period_s=sr.min_period.total_seconds() if sr else None,
        max_period_s=sr.max_period.total_seconds() if sr else None,
        on_change=sr.on_change if sr else False,
        market_context=d.market_context,
    )


def der_from_resource(
    ven: Ven, res: ResourceDescription, existing: Der | None, now: datetime
) -> Der:
    """The DER a resource describes; keeps identity and user-set fields of an existing one."""
    device_class = device_class_of(res.mrids)
    location = Location(lat=res.location[0], lon=res.location[1]) if res.location else None
    if existing is not None:
        return existing.model_copy(
            update={
                "device_class": device_class,
                "device_type": CLASS_TYPES.get(device_class, DeviceType.DEMAND),
                "end_device_mrids": res.mrids,
                "telemetry": res.telemetry,
                "aggregator_id": ven.aggregator_id,
                "account_id": ven.account_id,
                "location": existing.location or location,
                "updated_at": now,
            }
        )
    return Der(
        ven_id=ven.ven_id,
        resource_id=res.resource_id,
        device_name=res.resource_id,
        account_id=ven.account_id,
        aggregator_id=ven.aggregator_id,
        device_class=device_class,
        device_type=CLASS_TYPES.get(device_class, DeviceType.DEMAND),
        end_device_mrids=res.mrids,
        location=location,
        telemetry=res.telemetry,
        liveness=ven.liveness,
        created_at=now,
        updated_at=now,
    )


def der_changed(old: Der, new: Der) -> list[str]:
    """Names of the metadata fields a re-registration changed."""
    fields = ("device_class", "device_type", "end_device_mrids", "telemetry", "location")
    return [f for f in fields if getattr(old, f) != getattr(new, f)]


def status_of(rs: m.ResourceStatus, at: datetime) -> DerStatus:
    return DerStatus(
        online=rs.online,
        manual_override=rs.manual_override,
        load_control={
            k: LoadControl(current=v.current, min=v.min, max=v.max, normal=v.normal)
            for k, v in rs.load_control.items()
        },
        at=at,
    )


def capacities_of(
    rs: m.ResourceStatus, units: str | None, si_scale: str | None
) -> tuple[float | None, float | None]:
    """(max_capacity, available_capacity) in W from oadrLoadControlState/oadrCapacity.

    oadrMax is the DER's maximum, oadrCurrent what it can offer now, in the units of the
    status rID's itemBase (W when it has none).
    """
    cap = rs.load_control.get("capacity")
    if cap is None:
        return None, None
    max_w = to_watts(cap.max, units, si_scale) if cap.max is not None else None
    return max_w, to_watts(cap.current, units, si_scale)
