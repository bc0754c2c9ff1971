"""`vtn demo`: a VTN on the embedded store plus a few simulated OSBs, and one DR event.

The OSBs are ven-sim's (:mod:`ven_sim.fleet`, the same households ``ven-sim run``
simulates): they register over real OpenADR 2.0b HTTP, describe their DERs in METADATA
reports, send status and usage updates every second and poll. Once they have reported
for a few seconds the demo dispatches a DR event (SIMPLE level 2 on every DER, through
the manager the API uses) and shows it live: its status (far -> active -> completed),
what each OSB was sent and answered, and the fleet's load before vs during the event
from the VTN's measured response (:mod:`vtn.demo_event`).
"""

from __future__ import annotations

import asyncio
import math
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from registry.port import SERVICE, DerQuery, Store
from ven_sim.fleet import FleetOptions, build_osbs, run_fleet
from ven_sim.stats import Stats
from vtn.app import Vtn
from vtn.config import Config
from vtn.demo_event import (
    EventView,
    answer_of,
    dispatch,
    event_table,
    fleet_load_w,
    kw,
    look,
    summary_lines,
)
from vtn.server import RUNNER_OPTIONS
from vtn.transports.site import HttpSite

DERS_PER_OSB = 4
SETUP_TIMEOUT_S = 30.0  # registration and first reports of every OSB
REPORTS_BEFORE_S = 3.0  # seconds of usage reports (the baseline) before the dispatch
START_IN_S = 3.0  # the event starts this long after it is dispatched
TAIL_S = 4.0  # shown after the event: completed, the load recovering
MIN_EVENT_S = 10.0


def demo_config(config: Config) -> None:
    """Open enrollment and one-second polls, reports, history buckets and status job."""
    reg, reports = config.registration, config.reports
    reg.open_enrollment = True
    reg.default_aggregator_id = reg.default_aggregator_id or "demo"
    reg.poll_freq_s = 1.0
    reports.usage_granularity_s = reports.status_granularity_s = 1.0
    reports.report_back_duration_s = 1.0
    reports.history_bucket_s = reports.history_flush_s = 1.0
    config.events.status_interval_s = 1.0


def event_length_s(duration: float, elapsed: float) -> float:
    """What the demo's duration leaves for the event (at least MIN_EVENT_S)."""
    return max(MIN_EVENT_S, math.floor(duration - elapsed - START_IN_S - TAIL_S))


def registry_table(rows: list, names: dict[str, str]) -> Table:  # type: ignore[type-arg]
    table = Table("OSB", "DER", "class", "type", "liveness", "max kW", "avail kW",
                  title="DER registry")
    for d in rows:
        table.add_row(
            names.get(d.ven_id, d.ven_id),
            d.device_name,
            d.device_class.value,
            d.device_type.value,
            d.liveness.value,
            "-" if d.max_capacity is None else f"{d.max_capacity / 1000:.1f}",
            "-" if d.available_capacity is None else f"{d.available_capacity / 1000:.2f}",
        )
    return table


class Fleet:
    """ven-sim's OSBs, run in this process against the demo's VTN."""

    def __init__(self, base_url: str, vens: int) -> None:
        self.options = FleetOptions(
            vtn=base_url, vens=vens, ders_per_ven=DERS_PER_OSB, poll_s=1.0, report_s=1.0,
            ramp_s=0.5, name_prefix="demo-osb-", radius_km=10.0, connections=8, seed=1)
        self.names = [o.name for o in build_osbs(self.options)]
        self.stop = asyncio.Event()
        self.stats: Stats | None = None
        self.task: asyncio.Task[Stats] | None = None

    def _tick(self, stats: Stats) -> None:
        self.stats = stats

    def start(self) -> None:
        self.task = asyncio.create_task(run_fleet(self.options, self.stop, self._tick))

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            try:
                self.stats = await asyncio.wait_for(self.task, 10)
            finally:
                self.task = None


async def wait_for_fleet(store: Store, fleet: Fleet, since: datetime, say: Any
                         ) -> tuple[dict[str, str], datetime]:
    """Until every OSB registered and reported usage; ({ven_id: name}, first report)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETUP_TIMEOUT_S
    names: dict[str, str] = {}
    reported: set[str] = set()
    first: datetime | None = None
    wanted = set(fleet.names)
    while True:
        vens = [v for v in await store.list_vens(SERVICE) if v.ven_name in wanted]
        for v in vens:
            if v.ven_id not in names and v.registered:
                names[v.ven_id] = v.ven_name
                say(f"registered {v.ven_name} as venID {v.ven_id}")
            if v.ven_id not in names or v.ven_id in reported:
                continue
            ders = await store.ders_of_ven(v.ven_id)
            ats = [lv.at for d in ders for lv in d.last_values.values() if lv.at >= since]
            if ders and all(any(lv.at >= since for lv in d.last_values.values())
                            for d in ders):
                reported.add(v.ven_id)
                first = min([first, *ats]) if first else min(ats)
                say(f"  {v.ven_name} described {len(ders)} DERs and reports usage: "
                    + ", ".join(sorted(d.resource_id for d in ders)))
        if len(reported) == len(wanted) or (reported and loop.time() > deadline):
            break
        if loop.time() > deadline:
            raise RuntimeError(f"no simulated OSB registered within {SETUP_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.25)
    assert first is not None
    return {k: v for k, v in sorted(names.items(), key=lambda kv: kv[1]) if k in reported}, first


async def run_demo(config: Config, vens: int, duration: float) -> None:
    demo_config(config)
    vtn = Vtn(config)
    host, port = config.http.host, config.http.port
    site = HttpSite(vtn, host, port, **RUNNER_OPTIONS)
    await site.start()
    url = f"http://{host}:{port}/OpenADR2/Simple/2.0b"
    console = Console() if Console().is_terminal else Console(width=100)
    say = console.print
    say(f"[bold]VTN {config.vtn_id}[/] on {url}, store {config.store.url or config.sqlite_path}")
    fleet = Fleet(f"http://{host}:{port}", vens)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    say(f"starting {vens} simulated OSBs (ven-sim, {DERS_PER_OSB} DERs each, poll and "
        "report every second) ...")
    fleet.start()
    try:
        names, first = await wait_for_fleet(vtn.store, fleet, datetime.now(UTC), say)
        await asyncio.sleep(REPORTS_BEFORE_S)
        view = await run_event(vtn.store, names, first, duration - (loop.time() - t0),
                               console)
        await fleet.close()
        closing(console, view, fleet.stats)
        rows = await vtn.store.list_ders(DerQuery(limit=1000), SERVICE)
        rows = [d for d in rows if d.ven_id in names]
        say(registry_table(sorted(rows, key=lambda d: (names[d.ven_id], d.device_name)), names))
        log = await vtn.store.read_log(after=max(0, await vtn.store.last_seq() - 6), limit=6)
        for e in log:
            say(f"  log #{e.seq} {e.kind} {e.ven_id or ''} {e.data or ''}")
        ev = view.event.event_id
        where = "" if config.store.url else f" --data-dir {config.data_dir}"
        say(f"Next: `vtn events show {ev}{where}`, `vtn events response {ev}{where}`, "
            f"`vtn ders list{where}`, `vtn log tail -f{where}`; `vtn serve{where}` to keep "
            "the VTN running.")
    finally:
        await fleet.close()
        await site.stop()


async def run_event(store: Store, names: dict[str, str], first: datetime, left_s: float,
                    console: Console) -> EventView:
    """Dispatch the event and show it live until it completed; the last look at it."""
    say = console.print
    before = await load_of(store, names)
    now = datetime.now(UTC)
    length = event_length_s(left_s, 0.0)
    event, ders = await dispatch(store, list(names), now, START_IN_S, length, first)
    say(f"fleet load {kw(before)} kW (last reported usage of {ders} DERs)")
    say(f"[bold]dispatching DR event {event.event_id}[/]: SIMPLE level 2 on all {ders} DERs "
        f"of {len(names)} OSBs, from {event.dtstart:%H:%M:%S} UTC for {event.duration_s:.0f} s"
        " (registry.event_manager.create_event, as POST /api/v1/events does)")
    end = event.dtstart.timestamp() + event.duration_s + TAIL_S
    during: list[float] = []
    seen: dict[str, str] = {}
    status = ""
    view = await look(store, event.event_id, names, now)
    view.load_before_w = before
    live = Live(event_table(view, now), console=console, auto_refresh=False) if (
        console.is_terminal) else nullcontext()
    next_line = 0.0
    with live:
        while True:
            now = datetime.now(UTC)
            view = await look(store, event.event_id, names, now)
            view.load_before_w = before
            if view.status != status:
                say(f"event {event.event_id}: {status + ' -> ' if status else ''}{view.status}")
                status = view.status
            for r in view.rows:
                answer = answer_of(r)
                if seen.get(r.ven_id) != answer and r.delivered_mod is not None:
                    extra = f", optOut schedule {r.schedule}" if r.schedule else ""
                    say(f"  {r.name}: {answer}{extra}")
                    seen[r.ven_id] = answer
            if status == "active":
                during.append(view.load_now_w)
            if isinstance(live, Live):
                live.update(event_table(view, now), refresh=True)
            elif now.timestamp() >= next_line and status == "active":
                next_line = now.timestamp() + 10
                t = view.total
                so_far = (f"; measured so far: baseline {kw(t['baseline_w'])} kW, during "
                          f"{kw(t['event_w'])} kW, drop {kw(t['delivered_w'])} kW"
                          if view.measured else "")
                say(f"  active: fleet load {kw(view.load_now_w)} kW (before {kw(before)} kW)"
                    + so_far)
            if now.timestamp() >= end or status == "cancelled":
                break
            await asyncio.sleep(1.0)
    view.load_during_w = sum(during) / len(during) if during else None
    return view


async def load_of(store: Store, names: dict[str, str]) -> float:
    return sum(w for _, w in (await fleet_load_w(store, list(names))).values())


def closing(console: Console, view: EventView, stats: Stats | None) -> None:
    console.print(event_table(view, datetime.now(UTC)))
    for line in summary_lines(view):
        console.print(line)
    if stats is not None:
        console.print(
            f"ven-sim: {stats.events_received} event received, {stats.opt_ins} optIn, "
            f"{stats.opt_outs} optOut, {stats.opt_schedules} optOut schedules; "
            f"{stats.requests} requests, {sum(stats.errors.values())} errors")
