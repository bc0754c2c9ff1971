"""``--client openleadr``: the same households on openleadr's own OpenADRClient.

A cross-check that our VTN works with a VEN stack nobody here wrote. openleadr only
reports usage payloadFloat values (no status, no location), one task set per VEN, so
this mode is for small fleets.

Events: each client's ``on_event`` / ``on_update_event`` handler makes the opt decision of
:mod:`ven_sim.events` (optIn / optOut, an optOut schedule via ``create_opt`` when DERs are
busy) and its usage readers follow the opted-in events as an oadr-mode OSB's do.

With client certificates, each client gets its VEN's certificate, key and the CA bundle
through ``OpenADRClient(cert=, key=, ca_file=)``; openleadr then also signs its messages
with that certificate (XML signatures), as openleadr VENs do.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp
from openleadr import OpenADRClient, objects

from ven_sim.devices import Der
from ven_sim.events import OPT_IN, OsbEvents
from ven_sim.link import service_base
from ven_sim.osb import Osb
from ven_sim.stats import Stats
from ven_sim.tls import ClientTls
from vtn.codec import messages as m

_ELEMENT = re.compile(r"<(?:\w+:)?(oadr\w+)[\s>]")


def _element(xml: str) -> str:
    """Element name of the message inside oadrPayload/oadrSignedObject."""
    names = [n for n in _ELEMENT.findall(xml[:600]) if n not in ("oadrPayload",
                                                                 "oadrSignedObject")]
    return names[0] if names else "unknown"


def _hook_stats(client: OpenADRClient, stats: Stats) -> None:
    async def sent(xml: str) -> None:
        stats.sent[_element(xml)] += 1

    async def received(message_type: str, payload: dict[str, Any]) -> None:
        stats.received[message_type] += 1
        code = (payload.get("response") or {}).get("response_code")
        if code is not None and int(code) != 200:
            stats.errors[f"oadr {code}"] += 1

    client.add_hook("before_send_xml", sent)
    client.add_hook("after_parse_xml", received)


def make_client(osb: Osb, url: str, stats: Stats, sample_s: float,
                tls: ClientTls | None = None, index: int = 0) -> OpenADRClient:
    pair = tls.pair(index) if tls is not None else None
    ca_file = tls.options.ca_file if tls is not None else None
    certs: dict[str, Any] = {}
    if pair is not None:
        certs = dict(cert=str(pair.cert), key=str(pair.key or pair.cert),
                     ca_file=str(ca_file) if ca_file else None, show_fingerprint=False)
    client = OpenADRClient(ven_name=osb.name, vtn_url=service_base(url), **certs)
    if tls is not None and (pair is None or ca_file is None):
        # openleadr builds its TLS context only with a certificate and a CA file; with
        # --ca alone (or a certificate but no --ca: system trust) hand it ours
        client.client_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=tls.context(index)),
            headers={"content-type": "application/xml"},
            timeout=aiohttp.ClientTimeout(sock_connect=5, sock_read=10),
        )
    lon = osb.location[1]
    handler = EventHandler(osb, client, stats)
    client.add_handler("on_event", handler.on_event)
    client.add_handler("on_update_event", handler.on_event)
    for i, der in enumerate(osb.ders):
        client.add_report(
            callback=_reader(osb.ders, i, lon, handler.events),
            resource_id=der.resource_id,
            measurement="power_real",
            unit="W",
            report_specifier_id=f"usage-{der.resource_id}",
            r_id=der.usage_rid,
            report_type="usage",
            sampling_rate=timedelta(seconds=sample_s),
            report_duration=timedelta(seconds=max(60.0, sample_s)),
        )
    # openleadr 0.5.36 drops add_report's end_device_asset_mrid: set the reportSubject
    # (the device class) on the descriptions it built
    kinds = {d.usage_rid: d.kind.mrid for d in osb.ders}
    for report in client.reports:
        for desc in report.report_descriptions:
            desc.report_subject = objects.Target(
                resource_id=desc.report_subject.resource_id,
                end_device_asset=objects.EndDeviceAsset(mrid=kinds[desc.r_id]),
            )
    _hook_stats(client, stats)
    return client


def _reader(ders: tuple[Der, ...], i: int, lon: float,
            events: OsbEvents) -> Callable[[], float]:
    der = ders[i]

    def read() -> float:
        t = time.time()
        if events.live:
            shaped = events.powers(ders, lon, t)
            if shaped is not None:
                return shaped[i]
        return der.power(t, lon)

    return read


def _targets(items: list[dict[str, Any]] | None) -> m.EventTarget:
    target = m.EventTarget()
    for item in items or ():
        for key, ids in (("group_id", target.group_ids), ("resource_id", target.resource_ids),
                         ("ven_id", target.ven_ids), ("party_id", target.party_ids)):
            if item.get(key) is not None:
                ids.append(str(item[key]))
    return target


def event_from_openleadr(event: dict[str, Any]) -> m.Event:
    """openleadr's parsed oadrEvent dict as our :class:`m.Event` (what the decision reads)."""
    desc, period = event["event_descriptor"], event["active_period"]
    signals = event["event_signals"]
    if isinstance(signals, dict):
        signals = signals["event_signals"]
    tolerate = (period.get("tolerance") or {}).get("tolerate") or {}

    def signal(s: dict[str, Any]) -> m.EventSignal:
        measurement = s.get("measurement") or {}
        item = None
        if measurement:
            item = m.ItemBase(measurement.get("name", "powerReal"),
                              measurement.get("description", ""), measurement.get("unit", "W"),
                              measurement.get("scale") or "none")
        return m.EventSignal(
            signal_name=s["signal_name"], signal_type=s["signal_type"],
            signal_id=str(s.get("signal_id", "")),
            intervals=[m.SignalInterval(iv["duration"], float(iv["signal_payload"]),
                                        str(iv.get("uid", 0))) for iv in s["intervals"]],
            item_base=item, target=_targets(s.get("targets")) if s.get("targets") else None,
        )

    return m.Event(
        event_id=desc["event_id"], modification_number=int(desc.get("modification_number", 0)),
        market_context=desc.get("market_context") or "",
        created_date_time=desc["created_date_time"],
        event_status=desc.get("event_status", "far"),
        dtstart=period["dtstart"], duration=period["duration"],
        signals=[signal(s) for s in signals], target=_targets(event.get("targets")),
        response_required=event.get("response_required", "always"),
        start_after=tolerate.get("startafter"), recovery=period.get("recovery"),
    )


class EventHandler:
    """One openleadr client's on_event / on_update_event: the oadr-mode opt decision."""

    def __init__(self, osb: Osb, client: OpenADRClient, stats: Stats) -> None:
        self.osb = osb
        self.client = client
        self.stats = stats
        self.events = OsbEvents(osb.name)
        self.tasks: set[asyncio.Task[None]] = set()

    async def on_event(self, event: dict[str, Any]) -> str:
        ev = event_from_openleadr(event)
        held, opt = self.events.hold(self.osb.ders, self.osb.location[1], ev, time.time(),
                                     self.client.ven_id or "")
        self.stats.events_received += 1
        if event.get("response_required", "always") != "never":
            if held.opt == OPT_IN:
                self.stats.opt_ins += 1
            else:
                self.stats.opt_outs += 1
        if opt is not None and self.client.ven_id:
            # after openleadr's oadrCreatedEvent, not inside its handler
            task = asyncio.get_running_loop().create_task(self._send_opt(opt))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return held.opt

    async def _send_opt(self, opt: m.CreateOpt) -> None:
        """One oadrCreateOpt per busy DER: openleadr writes one eiTarget per target, and
        the 2.0b schema allows a single eiTarget per oadrCreateOpt."""
        await asyncio.sleep(0)
        schedule = objects.Vavailability([objects.VavailabilityComponent(start, duration)
                                          for start, duration in opt.availability])
        for rid in opt.resource_ids:
            self.stats.opt_schedules += 1
            try:
                await self.client.create_opt(
                    opt.opt_type, opt.opt_reason, targets=[objects.Target(resource_id=rid)],
                    vavailability=schedule, opt_id=f"{opt.opt_id}.{rid}"[:128],
                    market_context=opt.market_context,
                )
            except Exception as exc:  # noqa: BLE001 - openleadr's own errors, counted
                self.stats.errors[f"create_opt {type(exc).__name__}"] += 1


async def run_clients(
    osbs: list[Osb],
    url: str,
    stats: Stats,
    stop: asyncio.Event,
    duration_s: float | None,
    sample_s: float,
    on_tick: Callable[[Stats], None] | None,
    tls: ClientTls | None = None,
) -> None:
    logging.getLogger("openleadr").setLevel(logging.CRITICAL)
    clients = [make_client(o, url, stats, sample_s, tls, i) for i, o in enumerate(osbs)]
    try:
        for client in clients:
            await client.run()
            if client.registration_id:
                stats.registrations += 1
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            registered = sum(1 for c in clients if c.registration_id)
            stats.vens_registered = stats.vens_online = registered
            stats.tick()
            if on_tick is not None:
                on_tick(stats)
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
    finally:
        for client in clients:
            await client.stop()
