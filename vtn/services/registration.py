"""EiRegisterParty: query, create, cancel registration (both directions), re-registration."""

from __future__ import annotations

import time
import weakref
from datetime import timedelta
from typing import NoReturn

from registry.models import Liveness, LivenessChange, OutboxMessage, Ven, new_id
from registry.port import Batch, DeliveryTarget, liveness_entry
from registry.port.delivery import PUSH, XMPP
from vtn.codec import encode
from vtn.codec import messages as m
from vtn.security.audit import security_event
from vtn.services import targets, views
from vtn.services.base import (
    Context,
    OadrError,
    fingerprint_mismatch,
    log,
    new_request_id,
    ok,
    registered_ven,
)


def created_registration(
    ctx: Context, response: m.EiResponse, ven: Ven | None = None
) -> m.CreatedPartyRegistration:
    return m.CreatedPartyRegistration(
        response=response,
        vtn_id=ctx.vtn_id,
        registration_id=ven.registration_id if ven else None,
        ven_id=ven.ven_id if ven else None,
        # the transports this VTN serves (XMPP only while its session is configured)
        profiles=[("2.0b", ["simpleHttp", "xmpp"] if ctx.config.xmpp.enabled
                   else ["simpleHttp"])],
        poll_freq=timedelta(seconds=ctx.config.registration.poll_freq_s),
    )


async def query_registration(
    ctx: Context, msg: m.QueryRegistration, fingerprint: str | None = None
) -> m.CreatedPartyRegistration:
    return created_registration(ctx, ok(msg.request_id))


async def find_registering_ven(
    ctx: Context, msg: m.CreatePartyRegistration, fingerprint: str | None
) -> Ven | None:
    """The provisioned VEN a registration request belongs to (by venID, certificate, name)."""
    store = ctx.store
    if msg.ven_id:
        ven = await store.get_ven(msg.ven_id)
        if ven is not None:
            return ven
    ven = await store.find_ven_by_fingerprint(fingerprint) if fingerprint else None
    if ven is not None and msg.ven_name and msg.ven_name != ven.ven_name and fingerprint:
        # one certificate, one VEN: it may not register (or enrol) under another name.
        # The trace goes to the VEN whose name was claimed (its tenant must see it);
        # when no such VEN exists, to the certificate's owner.
        target = await store.find_ven_by_name(msg.ven_name)
        if target is not None:
            await fingerprint_mismatch(ctx, target, fingerprint,
                                       "certificate belongs to another VEN name")
        await fingerprint_mismatch(ctx, ven, fingerprint,
                                   "certificate belongs to another VEN name",
                                   claimed_ven_name=msg.ven_name)
    if ven is None and msg.ven_name:
        ven = await store.find_ven_by_name(msg.ven_name)
    if ven is not None and msg.ven_id and ven.ven_id != msg.ven_id:
        raise OadrError(m.INVALID_ID, "venID does not belong to this VEN")
    return ven


async def refuse(ctx: Context, ven: Ven | None, code: int, detail: str,
                 msg: m.CreatePartyRegistration) -> NoReturn:
    """Refuse a registration and log it (``ven.registration_refused``: the operator's
    dashboard counts them); under the VEN when known (its tenant sees it), else
    tenant-less (service tokens only). Names are cut to 200 characters."""
    if ven is not None or _refusals_of(ctx).admit(time.monotonic()):
        entry = log("ven.registration_refused", ven, ctx.clock(), actor="ven",
                    reason=detail, ven_name=(msg.ven_name or "")[:200] or None)
        await ctx.store.commit(Batch(log=[entry]))
    raise OadrError(code, detail)


class _Window:
    """At most ``limit`` stored refusals of unknown VENs per minute and process: anyone
    can send registrations, and each stored one is a row in the durable log (the
    refusals beyond it are still answered, counted in /metrics and on stderr)."""

    def __init__(self, limit: int = 120) -> None:
        self.limit, self.start, self.used = limit, 0.0, 0

    def admit(self, now: float) -> bool:
        if now - self.start >= 60.0:
            self.start, self.used = now, 0
        self.used += 1
        return self.used <= self.limit


_windows: weakref.WeakKeyDictionary[object, _Window] = weakref.WeakKeyDictionary()


def _refusals_of(ctx: Context) -> _Window:
    """One window per VTN process (keyed like history's buffer, by its contact tracker)."""
    w = _windows.get(ctx.contacts)
    if w is None:
        w = _windows[ctx.contacts] = _Window()
    return w


async def create_party_registration(
    ctx: Context, msg: m.CreatePartyRegistration, fingerprint: str | None = None
) -> m.CreatedPartyRegistration:
    now = ctx.clock()
    if msg.profile_name != "2.0b":
        raise OadrError(m.NOT_ALLOWED, f"profile {msg.profile_name} not supported")
    target = delivery_target_of(ctx, msg)
    ven = await find_registering_ven(ctx, msg, fingerprint)
    if ven is not None and ven.fingerprint and ven.fingerprint != fingerprint:
        # bound to a certificate: a wrong one or none at all (fails closed)
        await fingerprint_mismatch(ctx, ven, fingerprint, "certificate does not match this VEN")
    batch = Batch()
    enrolled = False
    if msg.registration_id:
        # re-registration: must name the registration the VTN issued
        if ven is None or not ven.registered or ven.registration_id != msg.registration_id:
            await refuse(ctx, ven, m.INVALID_ID, "unknown registrationID", msg)
        kind = "ven.reregistered"
    elif ven is not None:
        kind = "ven.reregistered" if ven.registered else "ven.registered"
        if ven.registered:
            # the VEN lost its state: same venID, new registration, old report requests gone
            batch.cancel_report_requests_of.append(ven.ven_id)
        ven.registration_id = new_id()
    else:
        reg = ctx.config.registration
        if not reg.open_enrollment:
            security_event("registration_refused", msg.ven_name,
                           "not provisioned (vtn vens add, or [registration] open_enrollment)")
            await refuse(ctx, None, m.NOT_REGISTERED_OR_AUTHORIZED, "VEN is not provisioned", msg)
        ven_id = msg.ven_id or new_id()
        ven = Ven(
            ven_id=ven_id,
            ven_name=msg.ven_name or ven_id,
            aggregator_id=reg.default_aggregator_id,
            account_id=reg.default_account_id,
            fingerprint=fingerprint,
            registration_id=new_id(),
            created_at=now,
        )
        batch.log.append(log("ven.enrolled", ven, now, actor="ven"))
        kind = "ven.registered"
        enrolled = True
    if fingerprint and ven.fingerprint is None:
        ven.fingerprint = fingerprint
    ven.registered = True
    ven.cancel_pending = False
    ven.profile_name = msg.profile_name
    ven.transport_name = msg.transport_name
    ven.transport_address = target or msg.transport_address
    ven.http_pull_model = msg.http_pull_model if msg.transport_name == PUSH else None
    ven.xml_signature = msg.xml_signature
    ven.report_only = msg.report_only
    ven.poll_freq_s = ctx.config.registration.poll_freq_s
    ven.registered_at = now
    ven.updated_at = now
    batch.vens.append(ven)
    if target is None:  # pull: a former push / XMPP registration of this VEN ends
        batch.drop_delivery_targets.append(ven.ven_id)
    else:
        batch.delivery_targets.append(DeliveryTarget(ven.ven_id, msg.transport_name, target))
    batch.log.append(log(kind, ven, now, actor="ven", registration_id=ven.registration_id,
                         transport=transport_label(msg)))
    # the VTN offers its own reports once the VEN is registered: an aggregator its
    # views (discovery over OpenADR), an OSB none
    if views.is_aggregator(ven):
        message, digest, ders = await views.announcement(ctx, ven)
        views.announce_on_registration(batch, ven, message, digest, ders, now)
    else:
        batch.outbox.append(outbox(
            ven, m.RegisterReport(request_id=new_request_id(), reports=[], ven_id=ven.ven_id)
        ))
    # the registration is contact: an offline VEN comes online in the same transaction
    online = ven.liveness == Liveness.ONLINE
    if enrolled:  # a new VEN is written online (no DERs yet): no second write of its row
        ven.liveness, ven.last_seen = Liveness.ONLINE, now
        change = LivenessChange(ven_id=ven.ven_id, old=Liveness.OFFLINE, new=Liveness.ONLINE)
        batch.log.append(liveness_entry(change, now, ven.aggregator_id, ven.account_id))
    elif not online:
        batch.mark_online.append((ven.ven_id, now))
    await ctx.store.commit(batch)
    if online:
        ctx.contacts.seen(ven.ven_id, now)
    else:
        ven.liveness = Liveness.ONLINE
    return created_registration(ctx, ok(msg.request_id), ven)


def delivery_target_of(ctx: Context, msg: m.CreatePartyRegistration) -> str | None:
    """The address the VTN sends to for a push or XMPP VEN (checked), None for pull."""
    if msg.transport_name == XMPP:
        return targets.check_jid(msg.transport_address)
    if msg.transport_name != PUSH:
        raise OadrError(m.NOT_ALLOWED, f"transport {msg.transport_name} not supported "
                        "(simpleHttp, xmpp)")
    if msg.http_pull_model is False:
        return targets.check_push_address(msg.transport_address, ctx.config.push)
    return None


def transport_label(msg: m.CreatePartyRegistration) -> str:
    if msg.transport_name == XMPP:
        return "xmpp"
    return "push" if msg.http_pull_model is False else "pull"


def outbox(ven: Ven, message: m.Message) -> OutboxMessage:
    return OutboxMessage(
        ven_id=ven.ven_id, kind=m.ELEMENT_NAMES[type(message)], body=encode(message).decode()
    )


async def unregister(ctx: Context, ven: Ven, actor: str, request_id: str | None = None) -> None:
    now = ctx.clock()
    registration_id = ven.registration_id
    ven.registered = False
    ven.registration_id = None
    ven.cancel_pending = False
    ven.updated_at = now
    batch = Batch(
        vens=[ven],
        cancel_report_requests_of=[ven.ven_id],
        cancel_subscriptions_of=[ven.ven_id],
        clear_outbox_of=[ven.ven_id],
        drop_delivery_targets=[ven.ven_id],
        log=[log("ven.registration_cancelled", ven, now, actor, registration_id=registration_id)],
    )
    await ctx.store.commit(batch)


async def cancel_party_registration(
    ctx: Context, msg: m.CancelPartyRegistration, fingerprint: str | None = None
) -> m.CanceledPartyRegistration:
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    if msg.registration_id != ven.registration_id:
        raise OadrError(m.INVALID_ID, "unknown registrationID")
    await unregister(ctx, ven, actor="ven")
    return m.CanceledPartyRegistration(
        response=ok(msg.request_id), registration_id=msg.registration_id, ven_id=ven.ven_id
    )


async def canceled_party_registration(
    ctx: Context, msg: m.CanceledPartyRegistration, fingerprint: str | None = None
) -> m.Response:
    """The VEN's answer to a VTN-initiated cancel delivered on poll."""
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    if not ven.cancel_pending:
        raise OadrError(m.OUT_OF_SEQUENCE, "no cancellation was requested")
    if msg.registration_id is not None and msg.registration_id != ven.registration_id:
        raise OadrError(m.INVALID_ID, "unknown registrationID")
    await unregister(ctx, ven, actor="vtn")
    return m.Response(ok(msg.response.request_id), ven_id=ven.ven_id)


async def response(ctx: Context, msg: m.Response, fingerprint: str | None = None) -> m.Response:
    """An oadrResponse from a VEN (e.g. acknowledging oadrRequestReregistration)."""
    ven = await registered_ven(ctx, msg.ven_id, fingerprint)
    return m.Response(ok(msg.response.request_id), ven_id=ven.ven_id)


# --- operator actions (CLI / side API) ------------------------------------------


async def request_cancel(ctx: Context, ven: Ven) -> None:
    """Queue a VTN-initiated oadrCancelPartyRegistration for the VEN's next poll."""
    if not ven.registered or ven.registration_id is None:
        raise OadrError(m.NOT_REGISTERED_OR_AUTHORIZED, "VEN is not registered")
    now = ctx.clock()
    ven.cancel_pending = True
    ven.updated_at = now
    message = m.CancelPartyRegistration(
        request_id=new_request_id(), registration_id=ven.registration_id, ven_id=ven.ven_id
    )
    await ctx.store.commit(
        Batch(
            vens=[ven],
            outbox=[outbox(ven, message)],
            log=[log("ven.cancel_requested", ven, now, actor="operator")],
        )
    )


async def request_reregistration(ctx: Context, ven: Ven) -> None:
    if not ven.registered:
        raise OadrError(m.NOT_REGISTERED_OR_AUTHORIZED, "VEN is not registered")
    now = ctx.clock()
    await ctx.store.commit(
        Batch(
            outbox=[outbox(ven, m.RequestReregistration(ven_id=ven.ven_id))],
            log=[log("ven.reregistration_requested", ven, now, actor="operator")],
        )
    )
