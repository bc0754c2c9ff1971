"""Raise the telemetry rate of a DR event's targets while it is active (issue #14).

``on_transitions`` takes what ``registry.event_manager.advance_statuses`` returns
((event_id, old, new) for each status change it logged, once across processes) and,
for events with ``telemetry_s``:

- to ``active``: queues for every targeted VEN one oadrCreateReport for the usage and
  status rIDs of its targeted DERs at granularity = reportBackDuration = telemetry_s,
  with a reportInterval of the event's duration (open-ended events: renewed like any
  open-ended request); origin ``event:<event_id>``;
- to ``completed`` / ``cancelled``: cancels those requests (oadrCancelReport) and renews
  the VEN's regular requests (a fresh reportRequestID: VENs that keep one report per
  specifier dropped the regular one for the event's), so the normal rate resumes.
"""

from __future__ import annotations

import logging

from registry.events import EventStatus
from registry.models import ReportRequestState
from registry.port import SERVICE
from registry.report_requests import ReportOrder
from vtn.services.base import Context, OadrError
from vtn.services.report_orders import request_report
from vtn.services.report_watch import renew_now
from vtn.services.reports import request_cancel_report

_log = logging.getLogger(__name__)
ENDED = (EventStatus.COMPLETED.value, EventStatus.CANCELLED.value)


async def on_transitions(ctx: Context, changes: list[tuple[str, str, str]]) -> int:
    """Requests queued or cancelled for these status changes."""
    n = 0
    for event_id, old, new in changes:
        try:
            if new == EventStatus.ACTIVE.value:
                n += await raise_rate(ctx, event_id)
            elif new in ENDED and old not in ENDED:
                n += await restore_rate(ctx, event_id)
        except Exception:  # one event must not stop the others (the job runs again)
            _log.exception("event telemetry for %s", event_id)
    return n


async def raise_rate(ctx: Context, event_id: str) -> int:
    event = await ctx.store.get_event(event_id, SERVICE)
    if event is None or event.telemetry_s is None:
        return 0
    n = 0
    for d in await ctx.store.deliveries_of_event(event_id, SERVICE):
        ven = await ctx.store.get_ven(d.ven_id)
        if ven is None or not ven.registered or not d.device_ids:
            continue
        order = ReportOrder(device_ids=d.device_ids, kinds=["usage", "status"],
                            granularity_s=event.telemetry_s,
                            report_back_duration_s=event.telemetry_s,
                            duration_s=event.duration_s or None)
        try:
            n += len(await request_report(ctx, ven, order, f"event:{event_id}"))
        except OadrError as exc:
            _log.warning("event %s: no telemetry request for %s: %s", event_id, d.ven_id, exc)
    return n


async def restore_rate(ctx: Context, event_id: str) -> int:
    origin = f"event:{event_id}"
    n = 0
    for d in await ctx.store.deliveries_of_event(event_id, SERVICE):
        ven = await ctx.store.get_ven(d.ven_id)
        if ven is None or not ven.registered:
            continue
        recs = await ctx.store.report_requests_of_ven(d.ven_id)
        mine = [r for r in recs if r.origin == origin and r.state in (
            ReportRequestState.PENDING, ReportRequestState.ACTIVE, ReportRequestState.SILENT,
            ReportRequestState.OVERDUE)]
        if not mine:
            continue
        specs = {r.report_specifier_id for r in mine}
        for r in mine:
            await request_cancel_report(ctx, ven, r.report_request_id)
            n += 1
        for r in recs:
            if r.origin == "registration" and r.report_specifier_id in specs:
                n += await renew_now(ctx, ven, r)
    return n
