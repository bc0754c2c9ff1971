"""Stored DR events -> the oadrDistributeEvent one VEN receives.

Built when the VEN polls (or asks with oadrRequestEvent), from the events current for
it at that moment, so a distribute always carries all of them (2.0b: an event left out
is cancelled on the VEN) and never another VEN's ids: the target holds the VEN's own
venID and resourceIDs only. Order: active first, then priority, then start.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from registry.events import DrEvent, EventDelivery, EventSignal
from vtn.codec import messages as m


def _signal(sig: EventSignal, current: float) -> m.EventSignal:
    return m.EventSignal(
        signal_name=sig.signal_name.value,
        signal_type=sig.signal_type,
        signal_id=sig.signal_id,
        intervals=[m.SignalInterval(timedelta(seconds=iv.duration_s), iv.value, str(i))
                   for i, iv in enumerate(sig.intervals)],
        item_base=_item_base(sig),
        current_value=current,
    )


# (element, itemDescription, namespace) per item kind; SI prefixes go to siScaleCode
_ITEMS = {
    "powerReal": ("powerReal", "RealPower", "power"),
    "energyReal": ("energyReal", "RealEnergy", "power"),
    "currency": ("currency", "currency", "oadr"),
    "currencyPerKWh": ("currencyPerKWh", "currencyPerKWh", "oadr"),
    "currencyPerKW": ("currencyPerKW", "currencyPerKW", "oadr"),
}
_SCALES = {"W": ("W", "none"), "kW": ("W", "k"), "MW": ("W", "M"),
           "Wh": ("Wh", "none"), "kWh": ("Wh", "k"), "MWh": ("Wh", "M")}


def _item_base(sig: EventSignal) -> m.ItemBase | None:
    if sig.units is None:
        return None
    kind, description, namespace = _ITEMS[sig.item_kind or "powerReal"]
    units, scale = _SCALES.get(sig.units, (sig.units, "none"))
    return m.ItemBase(kind=kind, description=description, units=units, si_scale=scale,
                      namespace=namespace)


def wire_event(event: DrEvent, delivery: EventDelivery, now: datetime) -> m.Event:
    def secs(v: float | None) -> timedelta | None:
        return None if v is None else timedelta(seconds=v)

    currents = event.current_values(now)
    return m.Event(
        event_id=event.event_id,
        modification_number=event.modification_number,
        market_context=event.program,
        created_date_time=now,  # "fresh" per the 2.0b conformance rules
        event_status=event.status_at(now).value,
        dtstart=event.dtstart,
        duration=timedelta(seconds=event.duration_s),
        signals=[_signal(s, c) for s, c in zip(event.signals, currents, strict=True)],
        target=m.EventTarget(resource_ids=list(delivery.resource_ids),
                             ven_ids=[delivery.ven_id]),
        response_required="always" if event.response_required else "never",
        priority=event.priority,
        modification_date_time=event.modified_at if event.modification_number else None,
        modification_reason=event.modification_reason,
        test_event="true" if event.test_event else "false",
        vtn_comment=event.vtn_comment,
        start_after=secs(event.start_after_s),
        notification=secs(event.notification_s),
        ramp_up=secs(event.ramp_up_s),
        recovery=secs(event.recovery_s),
    )


def distribute(
    request_id: str, vtn_id: str, current: list[tuple[DrEvent, EventDelivery]],
    now: datetime, reply_limit: int | None = None,
) -> m.DistributeEvent:
    ordered = sorted(current, key=lambda pair: pair[0].sort_key(now))
    if reply_limit is not None and reply_limit > 0:
        ordered = ordered[:reply_limit]
    return m.DistributeEvent(
        request_id=request_id, vtn_id=vtn_id,
        response=m.EiResponse(m.OK, "OK", request_id),
        events=[wire_event(e, d, now) for e, d in ordered],
    )
