"""`vtn demo`: a VTN on the embedded store plus a few simulated OSBs, shown live.

The OSBs speak OpenADR 2.0b over real HTTP with the project's codec: they register,
describe their devices in METADATA reports, send status and usage updates and poll.
"""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web
from rich.console import Console
from rich.table import Table

from registry.port import SERVICE, DerQuery
from vtn.app import Vtn
from vtn.codec import decode, encode
from vtn.codec import messages as m
from vtn.config import Config
from vtn.transports.http import build_app

DEVICES = [
    ("heatpump", "Heat_Pump", 3.0),
    ("boiler", "Water_Heater", 2.0),
    ("pv", "PV", 5.0),
    ("battery", "Energy_Storage", 4.6),
    ("evse", "EVSE", 11.0),
    ("lights", "Interior_Lighting", 0.4),
]


class DemoOsb:
    """A tiny OSB gateway: register, describe devices, report, poll."""

    def __init__(self, name: str, url: str, session: aiohttp.ClientSession, rng: random.Random):
        self.name, self.url, self.session = name, url, session
        self.ven_id = ""
        self.devices = rng.sample(DEVICES, 3)
        self.location = (52.52 + rng.uniform(-0.1, 0.1), 13.40 + rng.uniform(-0.1, 0.1))
        self.requests: dict[str, str] = {}  # reportSpecifierID -> reportRequestID

    async def send(self, service: str, msg: m.Message) -> m.Message:
        async with self.session.post(
            f"{self.url}/{service}", data=encode(msg), headers={"Content-Type": "application/xml"}
        ) as r:
            return decode(await r.read())

    def rid(self, res: str, kind: str) -> str:
        return f"{self.name}-{res}-{kind}"

    async def start(self) -> None:
        reply = await self.send(
            "EiRegisterParty", m.CreatePartyRegistration(request_id="reg", ven_name=self.name)
        )
        assert isinstance(reply, m.CreatedPartyRegistration) and reply.ven_id
        self.ven_id = reply.ven_id
        now = datetime.now(UTC)
        rate = m.SamplingRate(timedelta(seconds=1), timedelta(minutes=5))
        kw = m.ItemBase("powerReal", "RealPower", "W", "k")

        def desc(res: str, mrid: str, kind: str) -> m.ReportDescription:
            status = kind == "status"
            return m.ReportDescription(
                r_id=self.rid(res, kind),
                report_type="x-resourceStatus" if status else "usage",
                reading_type="x-notApplicable" if status else "Direct Read",
                resource_id=f"{self.name}-{res}",
                subject_mrids=[mrid],
                item=kw,
                sampling_rate=rate,
                location=self.location,
            )

        reports = [
            m.Report(
                report_specifier_id=spec,
                report_name=f"METADATA_TELEMETRY_{spec.upper()}",
                created_date_time=now,
                descriptions=[desc(res, mrid, spec) for res, mrid, _ in self.devices],
            )
            for spec in ("status", "usage")
        ]
        reply = await self.send(
            "EiReport", m.RegisterReport(request_id="rr", reports=reports, ven_id=self.ven_id)
        )
        assert isinstance(reply, m.RegisteredReport)
        self.requests = {r.report_specifier_id: r.report_request_id for r in reply.report_requests}
        await self.send(
            "EiReport",
            m.CreatedReport(
                m.EiResponse(200, "OK", "rr"), list(self.requests.values()), self.ven_id
            ),
        )

    async def report(self, t: float) -> None:
        now = datetime.now(UTC)
        for spec, rr in self.requests.items():
            payloads = []
            for res, _, cap in self.devices:
                level = 0.5 + 0.5 * math.sin(t / 5 + hash(res) % 7)
                if spec == "status":
                    payloads.append(
                        m.ReportPayload(
                            r_id=self.rid(res, spec),
                            status=m.ResourceStatus(
                                online=True,
                                manual_override=False,
                                load_control={
                                    "capacity": m.LoadControlValue(
                                        current=round(cap * level, 2), max=cap
                                    )
                                },
                            ),
                        )
                    )
                else:
                    payloads.append(m.ReportPayload(self.rid(res, spec), round(cap * level, 3)))
            report = m.Report(
                report_specifier_id=spec,
                report_name=f"TELEMETRY_{spec.upper()}",
                created_date_time=now,
                report_request_id=rr,
                dtstart=now,
                intervals=[m.ReportInterval(payloads=payloads, dtstart=now)],
            )
            await self.send(
                "EiReport", m.UpdateReport(request_id="u", reports=[report], ven_id=self.ven_id)
            )

    async def poll(self) -> None:
        while True:
            msg = await self.send("OadrPoll", m.Poll(ven_id=self.ven_id))
            if isinstance(msg, m.Response):
                return
            if isinstance(msg, m.RegisterReport):
                await self.send(
                    "EiReport",
                    m.RegisteredReport(m.EiResponse(200, "OK", msg.request_id), [], self.ven_id),
                )


def registry_table(rows: list) -> Table:  # type: ignore[type-arg]
    table = Table("DER", "class", "type", "liveness", "max kW", "avail kW", title="DER registry")
    for d in rows:
        table.add_row(
            d.device_name,
            d.device_class.value,
            d.device_type.value,
            d.liveness.value,
            "-" if d.max_capacity is None else f"{d.max_capacity / 1000:.1f}",
            "-" if d.available_capacity is None else f"{d.available_capacity / 1000:.2f}",
        )
    return table


async def run_demo(config: Config, vens: int, duration: float) -> None:
    config.registration.open_enrollment = True
    config.registration.default_aggregator_id = config.registration.default_aggregator_id or "demo"
    vtn = Vtn(config)
    runner = web.AppRunner(build_app(vtn), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.http.host, config.http.port).start()
    url = f"http://{config.http.host}:{config.http.port}/OpenADR2/Simple/2.0b"
    console = Console()
    console.print(f"[bold]VTN {config.vtn_id}[/] on {url}, store {config.sqlite_path}")
    rng = random.Random(42)
    try:
        async with aiohttp.ClientSession() as session:
            osbs = [DemoOsb(f"demo-osb-{i + 1:02d}", url, session, rng) for i in range(vens)]
            for osb in osbs:
                await osb.start()
                console.print(f"registered {osb.name} as venID {osb.ven_id}")
            loop = asyncio.get_running_loop()
            start = loop.time()
            while loop.time() - start < duration:
                t = loop.time() - start
                await asyncio.gather(*(o.report(t) for o in osbs), *(o.poll() for o in osbs))
                await asyncio.sleep(1.0)
        rows = await vtn.store.list_ders(DerQuery(limit=1000), SERVICE)
        console.print(registry_table(sorted(rows, key=lambda d: d.device_name)))
        log = await vtn.store.read_log(after=max(0, await vtn.store.last_seq() - 8), limit=8)
        for e in log:
            console.print(f"  log #{e.seq} {e.kind} {e.ven_id or ''} {e.data or ''}")
        console.print(
            "Next: `vtn serve` to keep it running, `vtn ders list`, `vtn log tail -f`"
            " (add --data-dir if you used one)."
        )
    finally:
        await runner.cleanup()
