"""``--client openleadr``: the same households on openleadr's own OpenADRClient.

A cross-check that our VTN works with a VEN stack nobody here wrote. openleadr only
reports usage payloadFloat values (no status, no location), one task set per VEN, so
this mode is for small fleets.

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
from ven_sim.link import service_base
from ven_sim.osb import Osb
from ven_sim.stats import Stats
from ven_sim.tls import ClientTls

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
    for der in osb.ders:
        client.add_report(
            callback=_reader(der, lon),
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


def _reader(der: Der, lon: float) -> Callable[[], float]:
    return lambda: der.power(time.time(), lon)


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
