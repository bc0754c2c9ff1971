"""Operator actions on the registry (CLI and, later, the side API)."""

from __future__ import annotations

from typing import Any

from registry import views
from registry.models import Ven, VenRole, View
from registry.port import Batch
from vtn.codec import messages as m
from vtn.services import registration
from vtn.services.base import Context, OadrError, log


async def provision_ven(
    ctx: Context,
    *,
    name: str,
    account_id: str | None = None,
    aggregator_id: str | None = None,
    ven_id: str | None = None,
    fingerprint: str | None = None,
    role: VenRole = VenRole.OSB,
) -> Ven:
    """Pre-provision a VEN: it may then register with this oadrVenName (or venID)."""
    store = ctx.store
    if await store.find_ven_by_name(name) is not None:
        raise OadrError(m.INVALID_ID, f"a VEN named {name!r} exists already")
    if ven_id is not None and await store.get_ven(ven_id) is not None:
        raise OadrError(m.INVALID_ID, f"venID {ven_id!r} exists already")
    if role == VenRole.AGGREGATOR and not aggregator_id:
        raise OadrError(m.INVALID_DATA, "an aggregator VEN needs an aggregator_id")
    now = ctx.clock()
    fields = {"ven_id": ven_id} if ven_id else {}
    ven = Ven(
        ven_name=name,
        account_id=account_id,
        aggregator_id=aggregator_id,
        fingerprint=fingerprint,
        role=role,
        poll_freq_s=ctx.config.registration.poll_freq_s,
        created_at=now,
        updated_at=now,
        **fields,
    )
    await store.commit(
        Batch(vens=[ven], log=[log("ven.provisioned", ven, now, actor="operator", name=name)])
    )
    return ven


async def _ven(ctx: Context, ven: str) -> Ven:
    found = await ctx.store.get_ven(ven) or await ctx.store.find_ven_by_name(ven)
    if found is None:
        raise OadrError(m.INVALID_ID, f"no VEN {ven!r}")
    return found


async def cancel_registration(ctx: Context, ven: str) -> None:
    await registration.request_cancel(ctx, await _ven(ctx, ven))


async def request_reregistration(ctx: Context, ven: str) -> None:
    await registration.request_reregistration(ctx, await _ven(ctx, ven))


# --- views (discovery over OpenADR) ------------------------------------------------


async def save_view(
    ctx: Context, aggregator_id: str, name: str, filters: dict[str, Any],
    description: str | None = None, actor: str = "operator",
) -> tuple[View, bool]:
    return await views.save_view(
        ctx.store, aggregator_id, name, filters, description, actor, ctx.clock()
    )


async def delete_view(ctx: Context, aggregator_id: str, name: str, actor: str = "operator"
                      ) -> bool:
    return await views.delete_view(ctx.store, aggregator_id, name, actor, ctx.clock())
