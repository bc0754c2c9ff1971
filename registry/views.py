"""Views: saved discovery queries owned by an aggregator, and their members.

A view stores only filter fields of :class:`DiscoveryQuery`; sorting, paging and
projection belong to whoever reads it. Members are always read through the owner's
aggregator scope, so a view can never reach another tenant's DERs, whatever it filters.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from registry.discovery import DerBrief, DiscoveryQuery
from registry.models import DEFAULT_VIEW, LogEntry, View
from registry.port import Batch, Scope, Store

NOT_FILTERS = ("sort", "fields", "limit", "cursor", "total")
VIEW_FILTERS = tuple(f for f in DiscoveryQuery.model_fields if f not in NOT_FILTERS)
PAGE = 1000
logger = logging.getLogger(__name__)
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)  # the default view never changes


class ViewError(ValueError):
    """Filters that are not a valid view (unknown field, bad value)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def view_query(filters: dict[str, Any], cursor: str | None = None) -> DiscoveryQuery:
    """The discovery query of a view's filters (validated exactly like the side API's)."""
    unknown = sorted(set(filters) - set(VIEW_FILTERS))
    if unknown:
        raise ViewError([{"field": k, "message": "not a view filter"} for k in unknown])
    try:
        return DiscoveryQuery.model_validate({**filters, "limit": PAGE, "cursor": cursor})
    except ValidationError as exc:
        raise ViewError(
            [
                {"field": ".".join(str(p) for p in e["loc"]) or "filters", "message": e["msg"]}
                for e in exc.errors()
            ]
        ) from exc


def normalise_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """Validated filters in canonical JSON form (what is stored and shown)."""
    query = view_query(filters)
    return query.model_dump(mode="json", include=set(VIEW_FILTERS), exclude_none=True)


def aggregator_scope(aggregator_id: str) -> Scope:
    return Scope(role="aggregator", aggregator_id=aggregator_id)


def default_view(aggregator_id: str) -> View:
    return View(
        aggregator_id=aggregator_id, name=DEFAULT_VIEW, description="all my DERs",
        created_at=_EPOCH, updated_at=_EPOCH,
    )


async def views_of(store: Store, aggregator_id: str) -> list[View]:
    """The aggregator's views: the default one first, then the saved ones by name."""
    saved = await store.list_views(aggregator_scope(aggregator_id), aggregator_id)
    return [default_view(aggregator_id), *(v for v in saved if v.name != DEFAULT_VIEW)]


async def find_view(store: Store, aggregator_id: str, name: str) -> View | None:
    if name == DEFAULT_VIEW:
        return default_view(aggregator_id)
    return await store.get_view(aggregator_id, name)


async def members(store: Store, view: View) -> list[DerBrief]:
    """Every DER of the view (device_id order), read inside the owner's scope."""
    return await store.der_briefs(view_query(view.filters), aggregator_scope(view.aggregator_id))


async def offered_members(store: Store, view: View) -> list[DerBrief] | None:
    """:func:`members`, or None for a stored view whose filters no longer validate (saved
    before a limit existed): the OpenADR side skips it with a warning instead of failing
    every offer, re-registration and refresh of its aggregator. Its owner can still read
    it (GET /views: 400 on its DERs, naming the filter) and delete it."""
    try:
        return await members(store, view)
    except ViewError as exc:
        logger.warning("view %s/%s skipped, its filters are invalid: %s",
                       view.aggregator_id, view.name, str(exc)[:200])
        return None


class ReservedName(ValueError):
    """The default view's name cannot be saved."""


async def save_view(
    store: Store, aggregator_id: str, name: str, filters: dict[str, Any],
    description: str | None, actor: str, now: datetime, *, replace: bool = True,
) -> tuple[View, bool]:
    """Create (or replace) a view; returns (view, created). Logged as view.created/changed.

    Raises :class:`ViewError` for bad filters, :class:`ReservedName` for the default
    view's name, pydantic's ValidationError for a bad name, FileExistsError when
    ``replace`` is false and the view exists. Aggregator VENs learn about the change at
    the next membership refresh.
    """
    if name == DEFAULT_VIEW:
        raise ReservedName(f"{DEFAULT_VIEW!r} is every aggregator's default view")
    normalised = normalise_filters(filters)
    old = await store.get_view(aggregator_id, name)
    if old is not None and not replace:
        raise FileExistsError(f"view {name!r} exists")
    view = View(
        aggregator_id=aggregator_id, name=name, filters=normalised, description=description,
        created_at=old.created_at if old else now, updated_at=now,
    )
    entry = LogEntry(
        kind="view.changed" if old else "view.created", at=now, actor=actor,
        aggregator_id=aggregator_id, data={"name": name, "filters": view.filters},
    )
    await store.commit(Batch(views=[view], log=[entry]))
    return view, old is None


async def delete_view(store: Store, aggregator_id: str, name: str, actor: str, now: datetime
                      ) -> bool:
    if await store.get_view(aggregator_id, name) is None:
        return False
    entry = LogEntry(kind="view.deleted", at=now, actor=actor, aggregator_id=aggregator_id,
                     data={"name": name})
    await store.commit(Batch(delete_views=[(aggregator_id, name)], log=[entry]))
    return True
