"""Signature policy at the engine boundary: which messages must be signed, by whom,
replay protection through the store, and signing of replies.

A VEN that registered with oadrXmlSignature=true must sign every message with the
certificate bound to it; any message that carries a signature has it checked; replies
are signed when the VEN signs or must sign (including outbox messages, signed when
they are delivered). Crypto runs in a small thread pool so the event loop keeps moving.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from registry.port import Batch
from vtn.codec import messages as m
from vtn.codec.xmlsafe import NS_DS
from vtn.security.audit import security_event
from vtn.security.signatures import SignatureError, Signer, verify
from vtn.services.base import Context, OadrError, fingerprint_mismatch, log
from vtn.services.registration import find_registering_ven

_log = logging.getLogger(__name__)
_DS = NS_DS.encode()


def _signature_child(body: bytes) -> bool:
    """Cheap pre-check: only documents naming the XMLDSig namespace can be signed."""
    return _DS in body


class SignatureGuard:
    def __init__(self, ctx: Context, workers: int = 2) -> None:
        self.ctx = ctx
        tls = ctx.config.tls
        # the VTN signs with its own (TLS server) certificate, loaded once
        self.signer = Signer.from_files(tls.cert_file, tls.key_file) if (
            tls.cert_file and tls.key_file
        ) else None
        self._pool: ThreadPoolExecutor | None = None
        self._workers = workers

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="xmlsig")
        return self._pool

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def check(
        self, msg: m.Message, body: bytes, fingerprint: str | None
    ) -> tuple[bool, OadrError | None]:
        """Verify an inbound message. Returns (sign the reply?, refusal or None)."""
        carries = _signature_child(body)
        asks = isinstance(msg, m.CreatePartyRegistration) and msg.xml_signature
        if self.signer is None and not carries:
            if asks:
                return False, OadrError(m.NOT_ALLOWED, "this VTN has no signing key configured")
            return False, None  # no signing deployment: nothing to enforce
        ven_id: str | None = getattr(msg, "ven_id", None)
        try:
            ven = await self._ven_of(msg, ven_id, fingerprint)
        except OadrError as exc:  # a certificate claiming another VEN (logged, 463)
            return self.signer is not None, exc
        required = asks or (ven is not None and ven.registered and ven.xml_signature)
        sign_reply = (required or carries) and self.signer is not None
        if not carries and not required:
            return False, None
        if ven is not None and ven.fingerprint and fingerprint != ven.fingerprint:
            try:  # someone else's certificate: the same 463 + log as unsigned traffic
                await fingerprint_mismatch(self.ctx, ven, fingerprint, "certificate does not "
                                           "match venID")
            except OadrError as exc:
                return sign_reply, exc
        if required and self.signer is None:
            return False, OadrError(m.NOT_ALLOWED, "this VTN has no signing key configured")
        expected = (ven.fingerprint if ven is not None else None) or fingerprint
        if required and expected is None:
            return sign_reply, await self._refuse(ven, "no certificate is bound to this VEN")
        if not carries:
            return sign_reply, await self._refuse(ven, "this VEN must sign its messages")
        try:
            verified = await self._run(verify, body, expected)
        except SignatureError as exc:
            return sign_reply, await self._refuse(ven, f"signature: {exc}")
        window = timedelta(seconds=self.ctx.config.signatures.replay_window_s)
        if abs(datetime.now(UTC) - verified.timestamp) > window:
            return sign_reply, await self._refuse(ven, "ReplayProtect timestamp outside window")
        owner = ven_id or verified.fingerprint
        if not await self.ctx.store.remember_nonce(
            owner, verified.nonce, verified.timestamp + window
        ):
            return sign_reply, await self._refuse(ven, "replayed message (nonce seen before)")
        return sign_reply, None

    async def _ven_of(self, msg: m.Message, ven_id: str | None, fingerprint: str | None) -> Any:
        """The VEN the message speaks for, resolved exactly as its handler will: a
        registration by venID, else certificate, else oadrVenName (so a signing VEN's
        requirement cannot be dropped by naming it without a venID)."""
        if isinstance(msg, m.CreatePartyRegistration):
            return await find_registering_ven(self.ctx, msg, fingerprint)
        return await self.ctx.store.get_ven(ven_id) if ven_id else None

    async def _refuse(self, ven: Any, reason: str) -> OadrError:
        security_event("signature_refused", getattr(ven, "ven_name", None), reason,
                       getattr(ven, "ven_id", None))
        entry = log("security.signature_refused", ven, self.ctx.clock(), actor="ven",
                    reason=reason)
        await self.ctx.store.commit(Batch(log=[entry]))
        return OadrError(m.NOT_REGISTERED_OR_AUTHORIZED, reason)

    async def sign(self, payload: bytes) -> bytes:
        assert self.signer is not None
        return await self._run(self.signer.sign, payload)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
