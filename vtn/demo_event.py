"""The DR event of ``vtn demo``: what it dispatches and what the live view shows of it.

The event goes through :func:`registry.event_manager.create_event`, the manager the API
(``POST /api/v1/events``) and ``vtn events create`` use. Everything shown is read back
from the VTN's own store: the deliveries (what each VEN was sent and answered), the
optOut schedules the VENs sent, the DERs' last reported usage and the measured response
(:func:`registry.response.measured_response`, ``GET /api/v1/events/{id}/response``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.table import Table

from registry.event_manager import create_event
from registry.events import DrEvent, EventSignal, EventTargets, SignalInterval
from registry.port import SERVICE, Store
from registry.response import measured_response
from vtn.services.profile import to_watts

PROGRAM = "demo"
LEVEL = 2  # SIMPLE level 2: high shed (ven-sim sheds two thirds of the flexible load)
LOAD_TYPES = frozenset({"usage", "demand"})
SOURCE_MEASURED = "the VTN's measured response (GET /api/v1/events/{id}/response)"
SOURCE_LAST = "the sum of the DERs' last reported usage values"


def kw(w: float | None) -> str:
    return "-" if w is None else f"{round(w / 1000, 2) or 0.0:.2f}"


async def dispatch(store: Store, ven_ids: list[str], now: datetime, start_in_s: float,
                   length_s: float, baseline_from: datetime) -> tuple[DrEvent, int]:
    """Create the demo's event for every DER of ``ven_ids``; (event, DERs targeted).

    It starts on a whole second ``start_in_s`` from now, so that the measured response's
    baseline window ``[baseline_from, dtstart)`` holds the reports sent before it."""
    dtstart = datetime.fromtimestamp(math.ceil(now.timestamp() + start_in_s), now.tzinfo)
    baseline_s = max(1.0, math.floor((dtstart - baseline_from).total_seconds()))
    length_s = float(max(1, round(length_s)))
    event = DrEvent(
        event_id=f"demo-{dtstart:%Y%m%dT%H%M%S}", program=PROGRAM, dtstart=dtstart,
        duration_s=length_s, recovery_s=5.0, baseline_s=baseline_s,
        signals=[EventSignal(signal_name="SIMPLE", signal_type="level",
                             intervals=[SignalInterval(duration_s=length_s, value=LEVEL)])],
        targets=EventTargets(ven_ids=ven_ids),
        vtn_comment="vtn demo: SIMPLE level 2 on every DER of the fleet",
    )
    event, deliveries = await create_event(store, event, SERVICE, actor="demo", now=now)
    return event, sum(len(d.device_ids) for d in deliveries)


@dataclass
class VenRow:
    name: str
    ven_id: str
    ders: int = 0
    load_w: float = 0.0  # sum of its DERs' last reported usage values
    delivered_mod: int | None = None
    opt: str | None = None
    opt_mod: int | None = None
    schedule: str = ""  # its optOut schedule covering the event: reason and resources
    baseline_w: float | None = None  # measured response
    event_w: float | None = None
    delivered_w: float | None = None


@dataclass
class EventView:
    """One look at the event in the VTN's store."""

    event: DrEvent
    status: str
    rows: list[VenRow] = field(default_factory=list)
    load_now_w: float = 0.0
    response: dict[str, Any] | None = None
    load_before_w: float = 0.0  # last reported usage when the event was dispatched
    load_during_w: float | None = None  # mean of load_now_w while the event was active

    @property
    def total(self) -> dict[str, Any]:
        return self.response["total"] if self.response else {}

    @property
    def measured(self) -> bool:
        """Whether the measured response has figures (a baseline and an event mean)."""
        return bool(self.total.get("ders_measured")) and self.total.get("event_w") is not None


def der_load_w(der: Any) -> float:
    return sum(to_watts(v.value, v.units, None) for v in der.last_values.values()
               if v.report_type in LOAD_TYPES)


async def fleet_load_w(store: Store, ven_ids: list[str]) -> dict[str, tuple[int, float]]:
    """ven_id -> (DERs, sum of their last reported usage values in W)."""
    out = {}
    for ven_id in ven_ids:
        ders = await store.ders_of_ven(ven_id)
        out[ven_id] = (len(ders), sum(der_load_w(d) for d in ders))
    return out


async def look(store: Store, event_id: str, names: dict[str, str], now: datetime
               ) -> EventView:
    """The event, each VEN's delivery and answer, loads and measured response now."""
    event = await store.get_event(event_id, SERVICE)
    assert event is not None
    view = EventView(event, event.status_at(now).value)
    loads = await fleet_load_w(store, list(names))
    deliveries = {d.ven_id: d for d in await store.deliveries_of_event(event_id, SERVICE)}
    view.response = await measured_response(store, event_id, SERVICE, now)
    measured = {v["ven_id"]: v for v in view.response["vens"]}
    for ven_id, name in names.items():
        row = VenRow(name, ven_id, *loads.get(ven_id, (0, 0.0)))
        d = deliveries.get(ven_id)
        if d is not None:
            row.delivered_mod, row.opt = d.delivered_mod, d.opt.value if d.opt else None
            row.opt_mod = d.opt_mod
        for opt in await store.opts_of_ven(ven_id):
            if opt.opt_type.value == "optOut" and opt.covers(event.dtstart):
                ids = opt.resource_ids
                which = ", ".join(ids) if 0 < len(ids) <= 2 else f"{len(ids) or 'all'} DERs"
                row.schedule = f"{opt.opt_reason} ({which})"
        m = measured.get(ven_id)
        if m is not None:
            row.baseline_w, row.event_w, row.delivered_w = (
                m["baseline_w"], m["event_w"], m["delivered_w"])
        view.rows.append(row)
    view.load_now_w = sum(r.load_w for r in view.rows)
    return view


def answer_of(row: VenRow) -> str:
    if row.opt is None:
        return "pending" if row.delivered_mod is None else "no answer yet"
    return f"{row.opt} (mod {row.opt_mod})"


def event_table(view: EventView, now: datetime) -> Table:
    """The live view: the event, every OSB's answer and load, the fleet's drop."""
    ev = view.event
    start = (ev.dtstart - now).total_seconds()
    end = start + ev.duration_s
    when = (f"starts in {start:.0f} s" if start > 0 else
            f"ends in {end:.0f} s" if end > 0 else "ended")
    table = Table("OSB", "DERs", "sent", "answer", "optOut schedule", "now", "baseline",
                  "during", "drop",
                  title=f"DR event {ev.event_id}: SIMPLE level {LEVEL}, status "
                        f"[bold]{view.status}[/] ({when})")
    for r in view.rows:
        table.add_row(r.name, str(r.ders), "-" if r.delivered_mod is None else
                      f"mod {r.delivered_mod}", r.opt or answer_of(r), r.schedule or "-",
                      kw(r.load_w), kw(r.baseline_w), kw(r.event_w), kw(r.delivered_w))
    t = view.total
    table.add_section()
    table.add_row("fleet", str(sum(r.ders for r in view.rows)), "", "", "",
                  kw(view.load_now_w), kw(t.get("baseline_w")), kw(t.get("event_w")),
                  kw(t.get("delivered_w")))
    table.caption = (f"kW, net (a discharging battery counts negative). now: last reported "
                     f"usage (when dispatched: {kw(view.load_before_w)}); baseline, during, "
                     "drop: the VTN's measured response")
    return table


def summary_lines(view: EventView) -> list[str]:
    """The closing lines: answers, and the fleet's load before vs during the event."""
    rows = view.rows
    ins = sum(r.opt == "optIn" for r in rows)
    outs = sum(r.opt == "optOut" for r in rows)
    lines = [f"event {view.event.event_id}: {view.status}; {len(rows)} OSBs sent it "
             f"({sum(r.delivered_mod is not None for r in rows)} delivered), "
             f"{ins} opted in, {outs} opted out"]
    if view.measured:
        t = view.total
        before, during = t["baseline_w"], t["event_w"]
        source = SOURCE_MEASURED.format(id=view.event.event_id)
        measured = f"{t['ders_measured']} of {t['ders']} DERs measured, {t['samples']} samples"
    else:
        before = view.load_before_w
        during = view.load_during_w if view.load_during_w is not None else before
        source, measured = SOURCE_LAST, "no measured response figures yet"
    drop = before - during
    share = f" ({drop / before:.0%})" if 0 < drop <= before else ""
    lines.append(f"fleet load before the event {kw(before)} kW, during it {kw(during)} kW: "
                 f"drop {kw(drop)} kW{share}")
    lines.append(f"  from {source}; {measured}")
    return lines
