"""Deliberately wrong requests an OSB sends now and then (``[bad]`` in the scenario):
malformed XML, schema violations, unknown IDs, and messages posted to the wrong service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ven_sim.session import EVENT, POLL, REG, REPORT, Env, Link, ok, request_id
from vtn.codec import encode
from vtn.codec import messages as m

if TYPE_CHECKING:
    from ven_sim.osb import Osb


async def send_bad(osb: Osb, link: Link, env: Env, kind: str) -> None:
    """One deliberately wrong request of ``kind`` (see scenarios/steady.toml)."""
    ven_id = osb.ven_id or "none"
    rng = env.rng
    if kind == "malformed":
        body = rng.choice([
            b"<oadrPayload><oadrSignedObject><oadrPoll>",
            b"not xml at all",
            encode(m.Poll(ven_id=ven_id))[:-40],
        ])
        await link.send_bad(kind, POLL, body)
    elif kind == "schema":
        poll = encode(m.Poll(ven_id=ven_id))
        choices = [
            (POLL, poll.replace(b"ei:venID>", b"ei:venId>")),
            (REG, encode(m.CreatePartyRegistration(request_id(), ven_name=osb.name))
             .replace(b"simpleHttp", b"carrierPigeon")),
        ]
        if osb.reports:
            upd = encode(osb.update(osb.reports[:1], env.wall(env.now())))
            choices.append((REPORT, upd.replace(b"<ei:value>", b"<ei:value>x", 1)
                            if b"<ei:value>" in upd else upd.replace(b"true", b"yes", 1)))
        service, body = rng.choice(choices)
        await link.send_bad(kind, service, body)
    elif kind == "unknown_id":
        unknown = f"unknown-{rng.getrandbits(32):x}"
        choices = [
            (POLL, m.Poll(ven_id=unknown)),
            (REG, m.CancelPartyRegistration(request_id(), registration_id=unknown,
                                            ven_id=ven_id)),
        ]
        if osb.reports:
            upd = osb.update(osb.reports[:1], env.wall(env.now()))
            upd.reports[0].report_request_id = unknown
            choices.append((REPORT, upd))
        service, msg = rng.choice(choices)
        await link.send_bad(kind, service, encode(msg))
    else:  # wrong_service
        service, msg = rng.choice([
            (REPORT, m.Poll(ven_id=ven_id)),
            (EVENT, m.QueryRegistration(request_id())),
            (POLL, m.Response(ok(""), ven_id=ven_id)),
        ])
        await link.send_bad(kind, service, encode(msg))
