"""Aggregator mode: a VEN that discovers and watches its DERs over OpenADR only.

It registers (the VTN must know it as an aggregator VEN), reads the views the VTN offers
in oadrRegisterReport (one METADATA report per view, one rID per DER plus aggregate
rIDs), asks for status reports with oadrCreateReport, and keeps the latest status of
every DER from the oadrUpdateReports it polls. When the VTN announces new metadata it
drops its old requests and asks again. This is the reference client of the aggregator
profile in docs/osb-profile.md.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ven_sim.session import Link
from vtn.codec import messages as m

REG, REPORT, POLL = "EiRegisterParty", "EiReport", "OadrPoll"
AGG_PREFIX = "agg."

_ids = itertools.count(1)


def _rid() -> str:
    return f"agg-sim-{next(_ids):x}"


@dataclass
class SeenDer:
    """What the aggregator knows about one DER (from metadata, then status reports)."""

    device_id: str
    resource_id: str | None
    ven_id: str | None
    device_class: str | None
    online: bool | None = None
    manual_override: bool | None = None
    load_control: dict[str, float] = field(default_factory=dict)
    updated: float | None = None  # monotonic time of the last status


@dataclass
class ViewState:
    name: str
    ders: dict[str, SeenDer] = field(default_factory=dict)
    aggregates: dict[str, float | None] = field(default_factory=dict)
    request_id: str | None = None  # our open reportRequestID for it


class Aggregator:
    """One aggregator VEN over a :class:`Link` (the fleet's HTTP client)."""

    def __init__(self, link: Link, name: str, views: list[str] | None = None,
                 granularity_s: float = 60.0, report_back_s: float = 60.0,
                 poll_s: float | None = None) -> None:
        self.link = link
        self.name = name
        self.wanted = views  # None: every offered view
        self.granularity_s = granularity_s
        self.report_back_s = report_back_s
        self.poll_s = poll_s
        self.ven_id: str | None = None
        self.views: dict[str, ViewState] = {}
        self.updates = 0
        self.announcements = 0
        self.errors: list[str] = []

    # --- registration -------------------------------------------------------------

    async def register(self) -> bool:
        reply = await self.link.send(REG, m.CreatePartyRegistration(
            request_id=_rid(), ven_name=self.name, ven_id=self.ven_id))
        if not isinstance(reply, m.CreatedPartyRegistration) or reply.response.code != m.OK:
            self.errors.append(f"registration refused: {getattr(reply, 'response', None)}")
            return False
        self.ven_id = reply.ven_id
        if self.poll_s is None and reply.poll_freq is not None:
            self.poll_s = reply.poll_freq.total_seconds()
        return True

    # --- the poll loop ------------------------------------------------------------

    async def poll_once(self) -> int:
        """Poll until the VTN has nothing more; returns how many messages were handled."""
        handled = 0
        while True:
            msg = await self.link.send(POLL, m.Poll(ven_id=self.ven_id or ""))
            if msg is None or isinstance(msg, m.Response):
                return handled
            handled += 1
            await self.handle(msg)

    async def run(self, duration_s: float) -> None:
        if self.ven_id is None and not await self.register():
            return
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            await self.poll_once()
            await asyncio.sleep(min(self.poll_s or 10.0, max(0.0, end - time.monotonic())))

    async def handle(self, msg: m.Message) -> None:
        if isinstance(msg, m.RegisterReport):
            await self._on_metadata(msg)
        elif isinstance(msg, m.UpdateReport):
            self._on_update(msg)
            await self.link.send(REPORT, m.UpdatedReport(ok(msg.request_id), ven_id=self.ven_id))
        elif isinstance(msg, m.RequestReregistration):
            await self.link.send(REG, m.Response(ok(""), ven_id=self.ven_id))
            await self.register()
        elif isinstance(msg, m.CancelPartyRegistration):
            await self.link.send(REG, m.CanceledPartyRegistration(
                ok(msg.request_id), registration_id=msg.registration_id, ven_id=self.ven_id))
            self.ven_id = None
        elif isinstance(msg, m.CancelReport):
            await self.link.send(REPORT, m.CanceledReport(ok(msg.request_id), ven_id=self.ven_id))

    async def _on_metadata(self, msg: m.RegisterReport) -> None:
        """New offer (the VTN ended our old requests): acknowledge, ask for the new rIDs."""
        self.announcements += 1
        await self.link.send(REPORT, m.RegisteredReport(ok(msg.request_id), ven_id=self.ven_id))
        previous = self.views
        self.views = {}
        requests = []
        for report in msg.reports:
            state = ViewState(report.report_specifier_id)
            before = previous.get(state.name)
            for d in report.descriptions:
                if d.r_id.startswith(AGG_PREFIX):
                    state.aggregates[d.r_id] = None
                    continue
                known = before.ders.get(d.r_id) if before else None
                state.ders[d.r_id] = known or SeenDer(
                    d.r_id, d.resource_id, d.source_ven_id,
                    d.subject_mrids[0] if d.subject_mrids else None)
            self.views[state.name] = state
            if self.wanted is not None and state.name not in self.wanted:
                continue
            state.request_id = _rid()
            requests.append(m.ReportRequest(
                report_request_id=state.request_id,
                report_specifier_id=state.name,
                specifier_payloads=[
                    m.SpecifierPayload(r_id=r) for r in (*state.ders, *state.aggregates)
                ],
                granularity=timedelta(seconds=self.granularity_s),
                report_back_duration=timedelta(seconds=self.report_back_s),
            ))
        if requests:
            reply = await self.link.send(REPORT, m.CreateReport(_rid(), requests, self.ven_id))
            if not isinstance(reply, m.CreatedReport) or reply.response.code != m.OK:
                self.errors.append(f"report request refused: {getattr(reply, 'response', None)}")

    def _on_update(self, msg: m.UpdateReport) -> None:
        self.updates += 1
        now = time.monotonic()
        for report in msg.reports:
            state = self.views.get(report.report_specifier_id)
            if state is None:
                continue
            for interval in report.intervals:
                for p in interval.payloads:
                    if p.r_id in state.aggregates:
                        state.aggregates[p.r_id] = p.value
                    elif (der := state.ders.get(p.r_id)) is not None and p.status is not None:
                        der.online = p.status.online
                        der.manual_override = p.status.manual_override
                        der.load_control = {k: v.current for k, v in
                                            p.status.load_control.items()}
                        der.updated = now

    # --- what it found ------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ven_id": self.ven_id, "announcements": self.announcements,
                               "updates": self.updates, "errors": self.errors, "views": {}}
        for name, state in self.views.items():
            by_class: dict[str, int] = {}
            for d in state.ders.values():
                by_class[d.device_class or "?"] = by_class.get(d.device_class or "?", 0) + 1
            out["views"][name] = {
                "ders": len(state.ders),
                "online": sum(1 for d in state.ders.values() if d.online),
                "by_class": by_class,
                "aggregates": {k: v for k, v in state.aggregates.items() if v is not None},
                "der_status": {
                    d.device_id: {"resource_id": d.resource_id, "ven_id": d.ven_id,
                                  "device_class": d.device_class, "online": d.online,
                                  "load_control": d.load_control}
                    for d in state.ders.values()
                },
            }
        return out


def ok(request_id: str) -> m.EiResponse:
    return m.EiResponse(m.OK, "OK", request_id)
