"""A DER group as IEC 61968-5 names it, for DERMS integrators (docs/der-groups.md).

The group is an ``EndDeviceGroup`` (``mRID`` = group_id, ``Names`` = its name under its
owner, ``version``, ``status``); what OpenADR events can ask of its members is its
``DERFunction``; its capacity per flow direction is a ``DERMonitorableParameter``
(``DERParameter`` activePower, ``yUnit`` W with ``yMultiplier`` k, installed max from
Σ max capacity) whose current value (Σ available capacity) is one ``DERCurveData``.
Values are in kW: the project's own names carry W.
"""

from __future__ import annotations

from typing import Any

from registry.group_model import Group
from registry.group_status import Rollup
from registry.models import DeviceType

# device type -> flowDirection (FlowDirectionKind): forward = from the grid to the DER
FLOW = {DeviceType.DEMAND.value: "forward", DeviceType.GENERATION.value: "reverse",
        DeviceType.STORAGE.value: "reverse"}
# what the VTN can ask a group's DERs through OpenADR (LOAD_DISPATCH setpoints, SIMPLE
# levels); connect/disconnect and ramp rates arrive with group dispatch (issue #15)
FUNCTIONS = {
    "realPowerDispatch": True, "maxRealPowerLimiting": True, "connectDisconnect": False,
    "rampRateControl": False, "reactivePowerDispatch": False, "voltageRegulation": False,
    "voltVarCurveFunction": False, "voltWattCurveFunction": False,
    "frequencyWattCurveFunction": False,
}


def _kw(w: float) -> float:
    return round(w / 1000.0, 6)


def cim_group(group: Group, status: Rollup, *, functions: dict[str, bool] | None = None,
              ) -> dict[str, Any]:
    """The EndDeviceGroup of a group with its capabilities and status now."""
    params = []
    for kind, tally in status.by_type.items():
        if not tally.members:
            continue
        params.append({
            "DERParameter": "activePower",
            "flowDirection": FLOW.get(kind, "forward"),
            "yMultiplier": "k",
            "yUnit": "W",
            "yUnitInstalledMax": _kw(tally.max_capacity_w),
            "yUnitInstalledMin": 0.0,
            "DERCurveData": [{
                "intervalNumber": 0, "timeStamp": status.at.isoformat(),
                "maxYValue": _kw(tally.available_capacity_w),
                "nominalYValue": _kw(tally.available_capacity_w), "minYValue": 0.0,
            }],
            "x-deviceType": kind, "x-members": tally.members, "x-online": tally.online,
        })
    return {
        "EndDeviceGroup": {
            "mRID": group.group_id,
            "description": group.description,
            "Names": [{"name": group.name, "NameType": {
                "name": "DERGroupName",
                "NameTypeAuthority": {"name": group.aggregator_id or "service"}}}],
            "version": {"date": group.updated_at.isoformat(), "major": group.version,
                        "minor": 0, "revision": 0},
            "status": {"dateTime": status.at.isoformat(),
                       "value": "online" if status.liveness["online"] else "offline",
                       "reason": f"{status.liveness['online']} of {status.members} "
                                 "members online"},
            "DERFunction": dict(functions or FUNCTIONS),
            "DERMonitorableParameter": params,
            "x-memberCount": status.members,
        }
    }
