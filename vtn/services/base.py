"""Shared pieces of the OpenADR service logic: context, errors, VEN authentication.

Service functions take a :class:`Context` and a decoded message and return the reply
message. They never touch sockets, so tests drive them directly over a real store.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn, TypeVar

from registry.models import LogEntry, Ven
from registry.port import Batch, PollState, Store
from vtn.codec import messages as m
from vtn.config import Config

V = TypeVar("V", Ven, PollState)


class OadrError(Exception):
    """A refusal with an OpenADR response code, answered in the request's response type."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description


def utc_clock() -> datetime:
    return datetime.now(UTC)


def new_request_id() -> str:
    return uuid.uuid4().hex


class ContactTracker:
    """Last contact per VEN, kept in memory and flushed in batches (no write per poll)."""

    def __init__(self) -> None:
        self._pending: dict[str, datetime] = {}

    def seen(self, ven_id: str, at: datetime) -> None:
        self._pending[ven_id] = at

    def drain(self) -> dict[str, datetime]:
        pending, self._pending = self._pending, {}
        return pending

    def __len__(self) -> int:
        return len(self._pending)


@dataclass(slots=True)
class Context:
    store: Store
    config: Config
    clock: Callable[[], datetime] = utc_clock
    contacts: ContactTracker = field(default_factory=ContactTracker)

    @property
    def vtn_id(self) -> str:
        return self.config.vtn_id


def log(kind: str, ven: Ven | None, at: datetime, actor: str = "vtn", **data: object) -> LogEntry:
    return LogEntry(
        kind=kind,
        at=at,
        actor=actor,
        ven_id=ven.ven_id if ven else None,
        aggregator_id=ven.aggregator_id if ven else None,
        account_id=ven.account_id if ven else None,
        data=dict(data),
    )


async def registered_ven(ctx: Context, ven_id: str | None, fingerprint: str | None = None) -> Ven:
    """The registered VEN a message claims to come from; counts the message as contact."""
    return await _registered(ctx, ven_id, fingerprint, ctx.store.get_ven)


async def registered_state(
    ctx: Context, ven_id: str | None, fingerprint: str | None = None
) -> PollState:
    """registered_ven for the hot paths (poll, update report): the same checks and
    contact, from one slim row instead of the VEN document."""
    return await _registered(ctx, ven_id, fingerprint, ctx.store.poll_state)


async def _registered(
    ctx: Context, ven_id: str | None, fingerprint: str | None,
    lookup: Callable[[str], Awaitable[V | None]],
) -> V:
    if not ven_id:
        raise OadrError(m.INVALID_ID, "venID missing")
    found = await lookup(ven_id)
    if found is None or not found.registered:
        raise OadrError(m.NOT_REGISTERED_OR_AUTHORIZED, "VEN is not registered")
    if found.fingerprint is not None and fingerprint != found.fingerprint:
        # a VEN bound to a certificate speaks only with it: a wrong one, or none at all
        # (no client certificate, or a proxy header that is not believed), is refused
        ven = found if isinstance(found, Ven) else await ctx.store.get_ven(ven_id)
        if ven is None:
            raise OadrError(m.NOT_REGISTERED_OR_AUTHORIZED, "VEN is not registered")
        await fingerprint_mismatch(ctx, ven, fingerprint, "certificate does not match venID")
    await contact(ctx, found)
    return found


async def fingerprint_mismatch(
    ctx: Context, ven: Ven, presented: str | None, detail: str, **data: object
) -> NoReturn:
    """Refuse with 463 and leave a trace under the VEN that was targeted (its tenant sees
    it): a certificate claiming another VEN's identity, or no certificate for a VEN that
    is bound to one (``presented`` None)."""
    entry = log(
        "security.fingerprint_mismatch", ven, ctx.clock(), actor="ven",
        presented=presented, expected=ven.fingerprint, **data,
    )
    await ctx.store.commit(Batch(log=[entry]))
    from vtn.security.audit import security_event

    security_event("fingerprint_mismatch", ven.ven_name, detail, ven.ven_id)
    raise OadrError(m.NOT_REGISTERED_OR_AUTHORIZED, detail)


async def contact(ctx: Context, ven: Ven | PollState) -> None:
    """Record contact: a VEN that was not online comes back at once, else coalesce."""
    now = ctx.clock()
    if ven.liveness != "online":
        await ctx.store.mark_online(ven.ven_id, now)
        ven.liveness = "online"  # type: ignore[assignment]
    else:
        ctx.contacts.seen(ven.ven_id, now)


def ok(request_id: str) -> m.EiResponse:
    return m.EiResponse(m.OK, "OK", request_id)
