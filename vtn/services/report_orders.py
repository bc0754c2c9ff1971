"""Reports on demand (issue #14), sent at once: the CLI and the event telemetry.

The HTTP API writes the same records unsent and leaves the sending to the watch job
(it never imports the service layer); both go through ``registry.report_requests``.
"""

from __future__ import annotations

from registry.models import ReportRequestRecord, Ven
from registry.port import Batch
from registry.report_requests import ReportOrder, plan_order
from vtn.codec import messages as m
from vtn.services.base import Context, OadrError, log
from vtn.services.registration import outbox
from vtn.services.report_watch import as_sent, create_report


async def request_report(
    ctx: Context, ven: Ven, order: ReportOrder, origin: str = "operator", actor: str = "vtn"
) -> list[ReportRequestRecord]:
    """Plan and queue one oadrCreateReport (all the order's requests) for the VEN."""
    if not ven.registered:
        raise OadrError(m.NOT_REGISTERED_OR_AUTHORIZED, "the VEN is not registered")
    now = ctx.clock()
    try:
        planned = plan_order(order, ven.ven_id, await ctx.store.ders_of_ven(ven.ven_id), now,
                             origin)
    except ValueError as exc:
        raise OadrError(m.INVALID_ID, str(exc)) from exc
    recs = [as_sent(r, now, ctx.config.reports) for r in planned]
    batch = Batch(report_requests=recs, outbox=[outbox(ven, create_report(ven.ven_id, recs))])
    for r in recs:
        batch.log.append(log("report.requested", ven, now, actor=actor,
                             report_request_id=r.report_request_id,
                             report_specifier_id=r.report_specifier_id, origin=origin,
                             attempt=1, via="oadrCreateReport", granularity_s=r.granularity_s))
    await ctx.store.commit(batch)
    return recs
