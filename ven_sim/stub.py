"""A canned-answer VTN for measuring the simulator itself (``ven-sim stub-vtn``).

It never parses a request: it picks a pre-encoded reply by looking for the message's
element name, so nearly all CPU spent in a run is the simulator's. Not a VTN: every VEN
gets the same venID, and report requests name every rID the simulator can produce.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from aiohttp import web

from ven_sim.devices import KINDS
from ven_sim.link import OADR_PATH
from ven_sim.session import STATUS_SPEC, USAGE_SPEC
from vtn.codec import encode
from vtn.codec import messages as m


def _ok() -> m.EiResponse:
    return m.EiResponse(m.OK, "OK", "stub")


def canned_replies(poll_s: float, report_s: float) -> list[tuple[bytes, bytes]]:
    """(needle in request, reply body) pairs, most frequent first."""
    ven_id = uuid.uuid4().hex
    created = m.CreatedPartyRegistration(
        _ok(), vtn_id="stub-vtn", registration_id=uuid.uuid4().hex, ven_id=ven_id,
        poll_freq=timedelta(seconds=poll_s),
    )

    def request(spec: str, suffix: str) -> m.ReportRequest:
        r_ids = [f"{k.key}-{n}-{suffix}" for k in KINDS for n in (1, 2)]
        return m.ReportRequest(
            report_request_id=uuid.uuid4().hex, report_specifier_id=spec,
            specifier_payloads=[m.SpecifierPayload(r) for r in r_ids],
            granularity=timedelta(seconds=report_s),
            report_back_duration=timedelta(seconds=report_s),
        )

    registered = m.RegisteredReport(
        _ok(), [request(STATUS_SPEC, "status"), request(USAGE_SPEC, "power")], ven_id=ven_id
    )
    return [
        (b"oadrPoll", encode(m.Response(_ok(), ven_id=ven_id))),
        (b"oadrUpdateReport", encode(m.UpdatedReport(_ok(), ven_id=ven_id))),
        (b"oadrQueryRegistration", encode(m.CreatedPartyRegistration(
            _ok(), vtn_id="stub-vtn", poll_freq=timedelta(seconds=poll_s)))),
        (b"oadrCreatePartyRegistration", encode(created)),
        (b"oadrRegisterReport", encode(registered)),
        (b"oadrCancelPartyRegistration", encode(m.CanceledPartyRegistration(
            _ok(), registration_id=created.registration_id, ven_id=ven_id))),
        (b"", encode(m.Response(_ok(), ven_id=ven_id))),
    ]


def build_stub_app(poll_s: float = 60.0, report_s: float = 60.0) -> web.Application:
    replies = canned_replies(poll_s, report_s)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        head = body[:1200]
        reply = next(r for needle, r in replies if needle in head)
        return web.Response(body=reply, content_type="application/xml")

    app = web.Application()
    app.router.add_post(OADR_PATH + "/{service}", handle)
    return app
