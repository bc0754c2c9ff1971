"""Response codes and the building blocks every service shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

# OpenADR response codes (eiResponse/responseCode).
OK = 200
OUT_OF_SEQUENCE = 450
NOT_ALLOWED = 451
INVALID_ID = 452
NOT_RECOGNIZED = 453
INVALID_DATA = 454
COMPLIANCE_ERROR = 459
SIGNAL_NOT_SUPPORTED = 460
REPORT_NOT_SUPPORTED = 461
TARGET_MISMATCH = 462
NOT_REGISTERED_OR_AUTHORIZED = 463
DEPLOYMENT_ERROR_OTHER = 469


@dataclass(slots=True)
class EiResponse:
    code: int = OK
    description: str = "OK"
    request_id: str = ""



@dataclass(slots=True)
class ItemBase:
    """An EMIX itemBase (powerReal, energyReal, voltage, temperature, customUnit...).

    ``kind`` is the element's local name; ``namespace`` says which schema it came from
    ("power", "emix" or "oadr"), so it can be written back exactly.
    """

    kind: str
    description: str
    units: str
    si_scale: str = "none"
    namespace: str = "power"
    # powerAttributes for power* kinds: hertz, voltage, ac
    hertz: float | None = None
    voltage: float | None = None
    ac: bool | None = None
    # oadr:pulseCount carries pulseFactor instead of siScaleCode
    pulse_factor: float | None = None


@dataclass(slots=True)
class SamplingRate:
    min_period: timedelta
    max_period: timedelta
    on_change: bool = False
