"""Two independent VENs for the report-request tests (issue #21), over real HTTP.

They are external peers written against the 2.0b messages only (vtn.codec), behaving
like VENs seen in the field:

* ``poll_only``: ignores the report requests inside ``oadrRegisteredReport`` and acts
  only on an ``oadrCreateReport`` delivered through a poll;
* ``one_shot``: acts on every request, but reads a request without ``reportInterval``
  as one-shot (one ``oadrUpdateReport`` without ``oadrReport``, then nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from tests.oadr import metadata
from vtn.codec import decode, encode, validate
from vtn.codec import messages as m


@dataclass
class PeerVen:
    url: str
    session: aiohttp.ClientSession
    name: str
    mode: str  # "poll_only" or "one_shot"
    ven_id: str = ""
    periodic: dict[str, m.ReportRequest] = field(default_factory=dict)
    seen_requests: list[str] = field(default_factory=list)  # every rrID it was sent
    received: list[str] = field(default_factory=list)  # element names from polls
    n: int = 0

    async def send(self, service: str, msg: m.Message) -> m.Message:
        async with self.session.post(f"{self.url}/{service}", data=encode(msg),
                                     headers={"Content-Type": "application/xml"}) as r:
            body = await r.read()
            assert r.status == 200, body
        validate(body)  # every VTN message is checked against the 2.0b XSD
        return decode(body)

    def rid(self) -> str:
        self.n += 1
        return f"{self.name}-{self.n}"

    async def register(self, resources: dict[str, str | None]) -> m.RegisteredReport:
        reply = await self.send("EiRegisterParty", m.CreatePartyRegistration(
            request_id=self.rid(), ven_name=self.name))
        assert isinstance(reply, m.CreatedPartyRegistration) and reply.ven_id
        self.ven_id = reply.ven_id
        registered = await self.send("EiReport", metadata(self.ven_id, resources))
        assert isinstance(registered, m.RegisteredReport)
        if self.mode == "one_shot":
            await self.adopt(registered.report_requests)
        return registered

    async def adopt(self, requests: list[m.ReportRequest]) -> None:
        pending = []
        for rr in requests:
            self.seen_requests.append(rr.report_request_id)
            pending.append(rr.report_request_id)
            if rr.interval_start is None and self.mode == "one_shot":
                continue  # one-shot: answered below with an empty update, then nothing
            self.periodic[rr.report_request_id] = rr
        await self.send("EiReport", m.CreatedReport(
            m.EiResponse(m.OK, "OK", self.rid()), pending_report_request_ids=pending,
            ven_id=self.ven_id))
        if self.mode == "one_shot" and any(r.interval_start is None for r in requests):
            reply = await self.send("EiReport", m.UpdateReport(self.rid(), [], self.ven_id))
            assert isinstance(reply, m.UpdatedReport) and reply.response.code == 200

    async def poll(self) -> list[str]:
        """Poll until the VTN has nothing more; answer what it sent."""
        got = []
        for _ in range(20):
            msg = await self.send("OadrPoll", m.Poll(ven_id=self.ven_id))
            if isinstance(msg, m.Response):
                break
            name = m.ELEMENT_NAMES[type(msg)]
            got.append(name)
            if isinstance(msg, m.CreateReport):
                await self.adopt(msg.report_requests)
            elif isinstance(msg, m.CancelReport):
                for rid in msg.report_request_ids:
                    self.periodic.pop(rid, None)
                await self.send("EiReport", m.CanceledReport(
                    m.EiResponse(m.OK, "OK", msg.request_id), ven_id=self.ven_id))
            elif isinstance(msg, m.RegisterReport):
                await self.send("EiReport", m.RegisteredReport(
                    m.EiResponse(m.OK, "OK", msg.request_id), ven_id=self.ven_id))
        self.received.extend(got)
        return got

    async def report(self, at: datetime, watts: float) -> int:
        """One oadrUpdateReport per periodic request: usage rIDs carry ``watts`` (kW on
        the wire, the metadata says siScaleCode k), status rIDs a resource status."""
        sent = 0
        for rr in self.periodic.values():
            payloads = []
            for p in rr.specifier_payloads:
                if p.r_id.endswith("-power"):
                    payloads.append(m.ReportPayload(r_id=p.r_id, value=watts / 1000))
                else:
                    payloads.append(m.ReportPayload(r_id=p.r_id, status=m.ResourceStatus(
                        online=True, manual_override=False)))
            name = "TELEMETRY_USAGE" if rr.report_specifier_id == "usage-spec" else (
                "TELEMETRY_STATUS")
            report = m.Report(report_specifier_id=rr.report_specifier_id, report_name=name,
                              created_date_time=at, report_request_id=rr.report_request_id,
                              dtstart=at,
                              intervals=[m.ReportInterval(payloads=payloads, dtstart=at)])
            reply = await self.send("EiReport", m.UpdateReport(self.rid(), [report],
                                                               self.ven_id))
            assert isinstance(reply, m.UpdatedReport) and reply.response.code == 200, reply
            sent += 1
        return sent
