"""``ven-sim run --transport xmpp``: the fleet's OSBs as XMPP VENs, one XMPP session each.

The OSBs, their DERs, scenarios and answers are the HTTP fleet's (:mod:`ven_sim.fleet`,
:class:`ven_sim.osb.Osb`); only the link differs (:class:`ven_sim.xmpp_link.XmppLink`).
XMPP is a push transport: the VENs do not poll; what the VTN queues for them arrives as
IQ sets and is handled by the OSB in turn with its own steps (one lock per VEN).

Each VEN is a TCP connection with its own XMPP session (slixmpp), so one process runs at
most :data:`MAX_VENS` of them; run several processes (``--start-index``) for more.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ven_sim.fleet import FleetOptions, Scheduler, build_osbs, rss_mb
from ven_sim.osb import Osb
from ven_sim.scenario import load_scenario
from ven_sim.session import Env
from ven_sim.stats import Stats
from ven_sim.xmpp_link import XmppLink
from vtn.codec import messages as m
from vtn.transports.xmpp_binding import tls_context

MAX_VENS = 2000  # sessions per process: descriptors, memory (~150 KB each) and CPU
CONNECT_AT_ONCE = 50  # logins in flight at once (SASL SCRAM costs the server CPU)
NO_POLL_S = 1e9  # XMPP VENs are pushed to; the OSB's poll never comes due


@dataclass
class XmppOptions:
    """Where the XMPP VENs log in. Account of VEN ``osb-00001``: ``osb-00001@domain``
    with ``password`` (a simulator's shared secret; provision them on the server)."""

    vtn_jid: str = "vtn@localhost/openadr"
    server: tuple[str, int] | None = None  # None: the domain's DNS records
    domain: str = "localhost"
    password: str = ""
    tls: str = "starttls"  # "starttls", "direct" or "none" (loopback only)
    resource: str = "ven"


class _Turns:
    """An OSB whose steps hold its link's lock, so a payload the VTN pushes meanwhile is
    handled between steps, never inside one (as a poll's reply would be)."""

    __slots__ = ("osb",)

    def __init__(self, osb: Osb) -> None:
        self.osb = osb

    def __getattr__(self, name: str) -> Any:
        return getattr(self.osb, name)

    async def step(self, link: XmppLink, env: Env, now: float) -> float | None:
        async with link.lock:
            return await self.osb.step(link, env, now)

    async def cancel(self, link: XmppLink) -> None:
        async with link.lock:
            await self.osb.cancel(link)


def jid_of(osb: Osb, xmpp: XmppOptions) -> str:
    return f"{osb.name.lower()}@{xmpp.domain}/{xmpp.resource}"


async def connect_all(links: list[XmppLink], timeout_s: float) -> int:
    """Log every VEN in, CONNECT_AT_ONCE at a time; returns how many sessions are up."""
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def one(link: XmppLink) -> bool:
        async with gate:
            link.connect()
            try:
                await asyncio.wait_for(link.online.wait(), timeout_s)
                return True
            except TimeoutError:
                return False

    return sum(await asyncio.gather(*(one(link) for link in links)))


async def run_xmpp_fleet(
    options: FleetOptions,
    xmpp: XmppOptions,
    stop: asyncio.Event | None = None,
    on_tick: Callable[[Stats], None] | None = None,
) -> Stats:
    """Run the XMPP fleet until ``options.duration_s`` passed or ``stop`` is set."""
    if options.vens > MAX_VENS:
        raise ValueError(f"--transport xmpp runs at most {MAX_VENS} VENs per process "
                         "(one XMPP session each): start more processes with --start-index")
    scenario = load_scenario(options.scenario)
    stats = Stats(vens=options.vens, ders_per_ven=options.ders_per_ven,
                  scenario=scenario.name, client="oadr-xmpp")
    stop = stop or asyncio.Event()
    osbs = build_osbs(options, scenario)
    loop = asyncio.get_running_loop()
    env = Env(scenario, poll_s=NO_POLL_S, report_s=options.report_s,
              rng=random.Random(options.seed + 1), now=loop.time)
    context = tls_context()  # one for the fleet (see tls_context)
    links = [XmppLink(jid_of(osb, xmpp), xmpp.password, xmpp.vtn_jid, stats, xmpp.server,
                      xmpp.tls, options.timeout_s, options.validate, context) for osb in osbs]
    turns: list[Any] = [_Turns(osb) for osb in osbs]
    scheduler = Scheduler(turns, links[0], env, options.connections,  # type: ignore[arg-type]
                          lambda i: links[i])
    for i, (osb, link) in enumerate(zip(osbs, links, strict=True)):
        link.on_message = _handler(osb, env, scheduler, i)
    try:
        up = await connect_all(links, options.timeout_s)
        if up < len(links):
            stats.errors["xmpp login"] += len(links) - up
        ramp = options.ramp_s if options.ramp_s is not None else min(30.0, options.vens / 100)
        await scheduler.run(stop, options.duration_s, ramp, on_tick)
        if options.cancel_on_exit:
            await scheduler.cancel_all()
    finally:
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
    stats.memory_mb = rss_mb()
    stats.tick()
    return stats


def _handler(osb: Osb, env: Env, scheduler: Scheduler,
             i: int) -> Callable[[XmppLink, m.Message], Any]:
    """Handle a pushed payload, then let the OSB step again soon: what it was sent (a
    report request, a registration change) may move its next due time earlier, and the
    scheduler only knows the time its last step returned."""

    async def handle(link: XmppLink, msg: m.Message) -> None:
        await osb.handle(link, env, msg)
        if not scheduler.closing:
            heapq.heappush(scheduler.heap, (env.now(), i))

    return handle
