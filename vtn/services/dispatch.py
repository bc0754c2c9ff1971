"""The protocol engine: bytes in, bytes out, no sockets.

Decodes a payload, routes it to the service function for its OpenADR service, and turns
every refusal into the response type that message expects, with the right code.
Transports (HTTP today) only move bytes and map :class:`Reply` to their status codes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from time import perf_counter
from typing import Any

from registry.port import StoreError
from vtn.codec import MalformedXml, SchemaInvalid, conformance, decode, encode
from vtn.codec import messages as m
from vtn.metrics import METRICS
from vtn.security.guard import SignatureGuard
from vtn.services import events, opt, poll, registration, reports
from vtn.services.base import Context, OadrError

log = logging.getLogger(__name__)

Handler = Callable[[Context, Any, str | None], Awaitable[m.Message | bytes]]

SERVICES: dict[str, dict[type, Handler]] = {
    "EiRegisterParty": {
        m.QueryRegistration: registration.query_registration,
        m.CreatePartyRegistration: registration.create_party_registration,
        m.CancelPartyRegistration: registration.cancel_party_registration,
        m.CanceledPartyRegistration: registration.canceled_party_registration,
        m.Response: registration.response,
    },
    "EiReport": {
        m.RegisterReport: reports.register_report,
        m.RegisteredReport: reports.registered_report,
        m.CreateReport: reports.create_report,
        m.CreatedReport: reports.created_report,
        m.UpdateReport: reports.update_report,
        m.UpdatedReport: reports.updated_report,
        m.CancelReport: reports.cancel_report,
        m.CanceledReport: reports.canceled_report,
        m.Response: registration.response,
    },
    "EiEvent": {
        m.RequestEvent: events.request_event,
        m.CreatedEvent: events.created_event,
        m.Response: registration.response,
    },
    "EiOpt": {
        m.CreateOpt: opt.create_opt,
        m.CancelOpt: opt.cancel_opt,
    },
    "OadrPoll": {m.Poll: poll.poll},
}


@dataclass(slots=True)
class Reply:
    status: int  # HTTP status
    body: bytes
    content_type: str = "application/xml"
    kind: str = ""  # element name of the reply, or the problem type


def problem(status: int, title: str, detail: str) -> Reply:
    import json

    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    return Reply(status, body.encode(), "application/problem+json", title)


def error_reply(
    ctx: Context,
    request_name: str,
    code: int,
    description: str,
    request_id: str | None,
    ven_id: str | None,
    opt_id: str | None = None,
) -> m.Message:
    """The response type ``request_name`` expects, carrying an error code."""
    resp = m.EiResponse(code, description[:200], request_id or "")
    if request_name in ("oadrQueryRegistration", "oadrCreatePartyRegistration"):
        return m.CreatedPartyRegistration(
            response=resp,
            vtn_id=ctx.vtn_id,
            profiles=[("2.0b", ["simpleHttp"])],
            poll_freq=timedelta(seconds=ctx.config.registration.poll_freq_s),
        )
    if request_name == "oadrCancelPartyRegistration":
        return m.CanceledPartyRegistration(response=resp, ven_id=ven_id)
    if request_name == "oadrRegisterReport":
        return m.RegisteredReport(response=resp, ven_id=ven_id)
    if request_name == "oadrCreateReport":
        return m.CreatedReport(response=resp, ven_id=ven_id)
    if request_name == "oadrUpdateReport":
        return m.UpdatedReport(response=resp, ven_id=ven_id)
    if request_name == "oadrCancelReport":
        return m.CanceledReport(response=resp, ven_id=ven_id)
    if request_name == "oadrRequestEvent":
        return m.DistributeEvent(request_id=request_id or "", vtn_id=ctx.vtn_id, response=resp)
    if request_name == "oadrCreateOpt":
        return m.CreatedOpt(response=resp, opt_id=opt_id or "unknown")
    if request_name == "oadrCancelOpt":
        return m.CanceledOpt(response=resp, opt_id=opt_id or "unknown")
    return m.Response(resp, ven_id=ven_id)


def request_id_of(msg: Any) -> str | None:
    rid = getattr(msg, "request_id", None)
    if rid is None and isinstance(getattr(msg, "response", None), m.EiResponse):
        rid = msg.response.request_id
    return rid


# oadrPoll is most of a fleet's traffic and carries nothing but a venID. A body that is
# byte for byte our codec's encoding of oadrPoll(venID), with a plain venID, is a valid
# 2.0b oadrPoll: it is taken without parsing and XSD-validating it again (ven-sim and VENs
# built on this codec send exactly that; anything else takes the full path).
_POLL_HEAD, _POLL_TAIL = encode(m.Poll(ven_id="VEN-ID-MARK")).split(b"VEN-ID-MARK")
_PLAIN_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def canonical_poll(body: bytes) -> m.Poll | None:
    if body.startswith(_POLL_HEAD) and body.endswith(_POLL_TAIL):
        ven_id = body[len(_POLL_HEAD) : len(body) - len(_POLL_TAIL)]
        if _PLAIN_ID.fullmatch(ven_id):
            return m.Poll(ven_id=ven_id.decode("ascii"))
    return None


# Bodies from this size on are parsed, XSD-validated and mapped in a worker thread: a
# 2 MB oadrRegisterReport takes ~0.2-0.4 s to decode, which on the event loop would hold
# every other VEN's poll. libxml2 parses and validates without the GIL; the mapping to
# dataclasses holds it but yields to the loop every switch interval (5 ms).
OFFLOAD_BYTES = 64 * 1024
DECODE_WORKERS = 2  # large messages decoded at once; more wait their turn off the loop


class Engine:
    """Handles one OpenADR request for a service endpoint."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.signatures = SignatureGuard(ctx)
        self._decoders: ThreadPoolExecutor | None = None

    async def decode_off_loop(self, body: bytes, validate: bool) -> m.Message:
        if self._decoders is None:
            self._decoders = ThreadPoolExecutor(DECODE_WORKERS, thread_name_prefix="decode")
        return await asyncio.get_running_loop().run_in_executor(
            self._decoders, functools.partial(decode, body, validate=validate)
        )

    def close(self) -> None:
        if self._decoders is not None:
            self._decoders.shutdown(wait=False)
            self._decoders = None
        self.signatures.close()

    async def handle(self, service: str, body: bytes, fingerprint: str | None = None) -> Reply:
        started = perf_counter()
        reply = await self._handle(service, body, fingerprint)
        METRICS.request(service, reply.status, perf_counter() - started)
        return reply

    async def _handle(self, service: str, body: bytes, fingerprint: str | None) -> Reply:
        handlers = SERVICES.get(service)
        if handlers is None:
            return problem(404, "unknown OpenADR service", service)
        canonical = canonical_poll(body) if service == "OadrPoll" else None
        validate = self.ctx.config.codec.validate_inbound
        try:
            if canonical is not None:
                msg: m.Message = canonical
            elif len(body) >= OFFLOAD_BYTES:
                msg = await self.decode_off_loop(body, validate)
            else:
                msg = decode(body, validate=validate)
        except SchemaInvalid as exc:
            METRICS.refusal(service, exc.message_name, m.INVALID_DATA)
            reply = error_reply(
                self.ctx, exc.message_name, m.INVALID_DATA, f"schema: {exc.detail}",
                exc.request_id, exc.ven_id,
            )
            return Reply(200, encode(reply), kind=m.ELEMENT_NAMES[type(reply)])
        except MalformedXml as exc:
            return problem(400, "malformed OpenADR payload", str(exc))
        name = m.ELEMENT_NAMES[type(msg)]
        ven_id = getattr(msg, "ven_id", None)
        handler = handlers.get(type(msg))
        sign_reply = False
        try:
            if handler is None:
                raise OadrError(m.INVALID_DATA, f"{name} is not accepted on {service}")
            if not canonical:  # our own oadrPoll encoding declares 2.0b
                version_problem = conformance.schema_version_problem(body)
                if version_problem is not None:
                    raise OadrError(m.COMPLIANCE_ERROR, version_problem)
            sign_reply, refusal = await self.signatures.check(msg, body, fingerprint)
            if refusal is not None:
                raise refusal
            result = await handler(self.ctx, msg, fingerprint)
        except OadrError as exc:
            METRICS.refusal(service, name, exc.code)
            result = error_reply(
                self.ctx, name, exc.code, exc.description, request_id_of(msg), ven_id,
                getattr(msg, "opt_id", None),
            )
        except StoreError as exc:
            METRICS.count(METRICS.store_errors, "openadr")
            log.warning("store unavailable while handling %s: %s", name, exc)
            return problem(503, "store unavailable", "retry later")
        except Exception:  # a bug must not take the VEN down with a 500
            log.exception("unexpected error handling %s", name)
            result = error_reply(
                self.ctx, name, m.DEPLOYMENT_ERROR_OTHER, "internal error", request_id_of(msg),
                ven_id, getattr(msg, "opt_id", None),
            )
        if isinstance(result, bytes):
            reply = Reply(200, result, kind="outbox")
        else:
            reply = Reply(200, encode(result), kind=m.ELEMENT_NAMES[type(result)])
        if sign_reply:  # outbox messages too: signed at delivery, with a fresh nonce
            reply.body = await self.signatures.sign(reply.body)
        return reply
