"""Store port for group dispatches (registry.group_dispatch): the dispatch records, their
members, and the answers their events got.

Writes go through ``Batch`` (``dispatches``, ``dispatch_expect``, ``dispatch_members``);
``dispatch_expect`` makes a write conditional on the record's ``rev``, so when several
processes re-dispatch the same record exactly one of them commits.

Scope (inside the queries): a service sees every dispatch; an aggregator the dispatches
of its own groups (``aggregator_id``); a prosumer none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from registry.events import DrEvent, EventDelivery
from registry.group_dispatch import DispatchMember, GroupDispatch
from registry.port.scope import Scope


@dataclass(slots=True)
class DispatchQuery:
    group: str | None = None
    aggregator_id: str | None = None  # the group owner (a service's filter)
    open_only: bool = False  # not closed
    limit: int = 100
    after_dispatch_id: str | None = None  # keyset paging on dispatch_id


def dispatch_visible(scope: Scope) -> tuple[bool, str | None]:
    """(anything visible?, the owner every visible dispatch must have; None: any)."""
    if scope.is_service:
        return True, None
    if scope.role == "aggregator" and scope.aggregator_id is not None:
        return True, scope.aggregator_id
    return False, None


def event_id_range(dispatch_id: str) -> tuple[str, str]:
    """[low, high) of the event ids ``<dispatch_id>.<n>``: one index range ('/' follows
    '.', and dispatch ids have no '.')."""
    return dispatch_id + ".", dispatch_id + "/"


class DispatchStore(Protocol):
    async def get_dispatch(self, dispatch_id: str, scope: Scope) -> GroupDispatch | None: ...

    async def list_dispatches(self, query: DispatchQuery, scope: Scope
                              ) -> list[GroupDispatch]:
        """Dispatches in the scope, in dispatch_id order after ``after_dispatch_id``."""
        ...

    async def open_dispatches(self) -> list[GroupDispatch]:
        """Every dispatch not closed yet (the re-dispatch job's input)."""
        ...

    async def dispatch_members(self, dispatch_id: str, scope: Scope
                               ) -> list[DispatchMember]:
        """The members of a dispatch visible in the scope, in device_id order."""
        ...

    async def dispatch_events(self, dispatch_id: str) -> list[DrEvent]:
        """The dispatch's events (``<dispatch_id>.<n>``) in event_id order, without their
        targets (``EventTargets()``, as ``events_for_ven`` reads them): one range read
        for the re-dispatch job. Service scope."""
        ...

    async def dispatch_deliveries(self, dispatch_id: str) -> list[EventDelivery]:
        """The deliveries of the dispatch's events (``<dispatch_id>.<n>``), in (event_id,
        ven_id) order: what each member VEN was sent and answered. Service scope: for
        the re-dispatch job and for callers that checked the dispatch's visibility."""
        ...
