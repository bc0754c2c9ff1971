"""Report requests every VEN understands (issue #21): resend, renew, overdue, silent.

The VTN asks an OSB for its telemetry inside ``oadrRegisteredReport``. Some VENs act
only on an ``oadrCreateReport`` that a poll delivers, so a request that is not
acknowledged (``oadrCreatedReport`` naming it, or a first report carrying data) within
``[reports] ack_timeout_s`` is sent again as ``oadrCreateReport`` with the same
reportRequestID, waiting ``ack_timeout_s * ack_backoff^n`` between sends; after
``max_attempts`` sends in all it is ``overdue``. An acknowledged request whose reports
stop for ``silent_after_periods`` report periods is ``silent``; the next report makes it
``active`` again. Every request carries a ``reportInterval`` (dtstart = when it is
first sent, duration = ``horizon_s`` for open-ended ones); an open-ended request is
renewed ``renew_before_s`` before its end by a new request (a new reportRequestID: an
acknowledged one is never sent twice), and the old one is cancelled with
``oadrCancelReport`` once the new one is acknowledged (or simply expires).

One scheduler job (:func:`check`) drives all of it from the store: each request has a
``next_check_at``; every change is a conditional update on the (state, rev) read, so
when several VTN processes run the job each step happens once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from registry.models import (
    ReportRequestRecord,
    ReportRequestState,
    Ven,
    new_id,
)
from registry.port import Batch, Conflict, LeaseLost
from vtn.codec import messages as m
from vtn.config import ReportsConfig
from vtn.services.base import Context, log, new_request_id
from vtn.services.registration import outbox

_log = logging.getLogger(__name__)
S = ReportRequestState
MAX_ROUNDS = 20  # batches per job run (the next run continues)


def wire_request(rec: ReportRequestRecord) -> m.ReportRequest:
    """The oadrReportRequest of a record, with its explicit reportInterval."""
    duration = rec.interval_duration_s
    return m.ReportRequest(
        report_request_id=rec.report_request_id,
        report_specifier_id=rec.report_specifier_id,
        specifier_payloads=[
            m.SpecifierPayload(r_id=r, reading_type=rec.reading_types.get(r, "x-notApplicable"))
            for r in rec.r_ids
        ],
        granularity=timedelta(seconds=rec.granularity_s),
        report_back_duration=timedelta(seconds=rec.report_back_duration_s),
        interval_start=rec.interval_start,
        interval_duration=timedelta(seconds=duration) if duration is not None else None,
    )


def ack_delay(cfg: ReportsConfig, attempts: int) -> timedelta:
    """How long to wait for an acknowledgement after the ``attempts``-th send."""
    return timedelta(seconds=cfg.ack_timeout_s * cfg.ack_backoff ** max(attempts - 1, 0))


def as_sent(rec: ReportRequestRecord, now: datetime, cfg: ReportsConfig) -> ReportRequestRecord:
    """``rec`` after one more send at ``now`` (its reportInterval fixed at the first)."""
    attempts = rec.attempts + 1
    update: dict[str, object] = {
        "attempts": attempts, "requested_at": now, "rev": rec.rev + 1,
        "next_check_at": now + ack_delay(cfg, attempts),
    }
    if rec.interval_start is None:
        update["interval_start"] = now
        if rec.interval_duration_s is None:
            update["interval_duration_s"] = cfg.horizon_s
    return rec.model_copy(update=update)


def next_check_after(rec: ReportRequestRecord, at: datetime, cfg: ReportsConfig) -> datetime:
    """When the watch job must look at a request the VEN just acknowledged or reported
    on: when it would be silent, or earlier to renew / expire it. Written with each
    refresh of last_report_at, so healthy requests never wake the job in between."""
    nxt = at + timedelta(seconds=cfg.silent_after_periods * rec.period_s + 1)
    end = rec.interval_end
    if end is not None:
        nxt = min(nxt, end - timedelta(seconds=cfg.renew_before_s) if rec.renew else end)
    if rec.replaced_by is not None:
        nxt = min(nxt, at + timedelta(seconds=cfg.ack_timeout_s))
    return nxt


def create_report(ven_id: str, recs: list[ReportRequestRecord]) -> m.CreateReport:
    return m.CreateReport(request_id=new_request_id(),
                          report_requests=[wire_request(r) for r in recs], ven_id=ven_id)


def cancel_report(ven_id: str, ids: list[str]) -> m.CancelReport:
    return m.CancelReport(request_id=new_request_id(), report_request_ids=ids,
                          report_to_follow=False, ven_id=ven_id)


def _entry(kind: str, ven: Ven, rec: ReportRequestRecord, now: datetime, **data: object):  # type: ignore[no-untyped-def]
    return log(kind, ven, now, report_request_id=rec.report_request_id,
               report_specifier_id=rec.report_specifier_id, origin=rec.origin, **data)


class _Step:
    """What one check decided: the record's new version and what goes with it."""

    def __init__(self, rec: ReportRequestRecord) -> None:
        self.old = rec
        self.batch = Batch()
        self.new: ReportRequestRecord | None = None

    def set(self, rec: ReportRequestRecord, **update: object) -> ReportRequestRecord:
        self.new = rec.model_copy(update={"rev": self.old.rev + 1, **update})
        return self.new


async def _decide(ctx: Context, rec: ReportRequestRecord, ven: Ven, now: datetime) -> _Step:
    cfg = ctx.config.reports
    step = _Step(rec)
    b = step.batch
    if rec.state is S.CANCEL_PENDING:
        if not rec.cancel_sent:
            b.outbox.append(outbox(ven, cancel_report(ven.ven_id, [rec.report_request_id])))
            b.log.append(_entry("report.cancel_requested", ven, rec, now))
        step.set(rec, cancel_sent=True, next_check_at=None)
    elif rec.state is S.PENDING:
        if rec.attempts == 0 or rec.attempts < cfg.max_attempts:
            new = as_sent(rec, now, cfg)
            step.new = new
            b.outbox.append(outbox(ven, create_report(ven.ven_id, [new])))
            b.log.append(_entry("report.requested", ven, new, now, attempt=new.attempts,
                                via="oadrCreateReport"))
        else:
            step.set(rec, state=S.OVERDUE, next_check_at=None)
            b.log.append(_entry("report.overdue", ven, rec, now, attempts=rec.attempts))
    elif rec.state in (S.ACTIVE, S.SILENT):
        await _running(ctx, step, ven, now)
    else:  # overdue: waits for the VEN (an acknowledgement or a report clears it)
        step.set(rec, next_check_at=None)
    return step


async def _running(ctx: Context, step: _Step, ven: Ven, now: datetime) -> None:
    cfg = ctx.config.reports
    rec, b = step.old, step.batch
    end = rec.interval_end
    if rec.replaced_by is not None:
        new = await ctx.store.get_report_request(rec.ven_id, rec.replaced_by)
        if new is not None and new.state in (S.ACTIVE, S.SILENT):
            b.outbox.append(outbox(ven, cancel_report(ven.ven_id, [rec.report_request_id])))
            b.log.append(_entry("report.replaced", ven, rec, now, by=rec.replaced_by))
            step.set(rec, state=S.CANCEL_PENDING, cancel_sent=True, next_check_at=None)
            return
        if end is not None and now >= end:
            _expire(step, ven, now)
        elif new is None or new.state in (S.CANCELLED, S.CANCEL_PENDING):
            step.set(rec, replaced_by=None, next_check_at=now)  # renewed again next round
        else:
            nxt = now + timedelta(seconds=cfg.ack_timeout_s)
            step.set(rec, next_check_at=min(nxt, end) if end else nxt)
        return
    if end is not None and now >= end:
        _expire(step, ven, now)
        return
    renew_at = end - timedelta(seconds=cfg.renew_before_s) if end and rec.renew else None
    if renew_at is not None and now >= renew_at:
        renewal(step, ven, now, cfg)
        return
    window = timedelta(seconds=cfg.silent_after_periods * rec.period_s)
    last = rec.last_report_at or rec.acknowledged_at or rec.requested_at or rec.created_at
    candidates = [t for t in (renew_at, end) if t is not None]
    if rec.state is S.ACTIVE:
        if now - last > window:
            b.log.append(_entry("report.silent", ven, rec, now, last_report_at=(
                rec.last_report_at.isoformat() if rec.last_report_at else None)))
            step.set(rec, state=S.SILENT, next_check_at=min(candidates, default=None))
            return
        candidates.append(last + window + timedelta(seconds=1))
    step.set(rec, next_check_at=min(candidates, default=None))


def renewal(step: _Step, ven: Ven, now: datetime, cfg: ReportsConfig) -> ReportRequestRecord:
    """A fresh request (new reportRequestID, fresh reportInterval) replacing step.old;
    the old one is cancelled once the fresh one is acknowledged (see _running)."""
    rec, b = step.old, step.batch
    fresh = as_sent(rec.model_copy(update={
        "report_request_id": new_id(), "state": S.PENDING, "attempts": 0, "rev": 0,
        "interval_start": None, "interval_duration_s": None, "created_at": now,
        "acknowledged_at": None, "last_report_at": None, "replaces": rec.report_request_id,
        "replaced_by": None, "cancel_sent": False,
    }), now, cfg)
    b.report_requests.append(fresh)
    b.outbox.append(outbox(ven, create_report(ven.ven_id, [fresh])))
    b.log.append(_entry("report.renewed", ven, rec, now, by=fresh.report_request_id))
    b.log.append(_entry("report.requested", ven, fresh, now, attempt=1, via="oadrCreateReport"))
    step.set(rec, replaced_by=fresh.report_request_id,
             next_check_at=now + timedelta(seconds=cfg.ack_timeout_s))
    return fresh


async def renew_now(ctx: Context, ven: Ven, rec: ReportRequestRecord) -> bool:
    """Replace a running request at once (after an event's raised rate, some VENs have
    dropped it for the event's request); False if it changed meanwhile."""
    if rec.state not in (S.ACTIVE, S.SILENT) or rec.replaced_by is not None:
        return False
    step = _Step(rec)
    renewal(step, ven, ctx.clock(), ctx.config.reports)
    assert step.new is not None
    step.batch.report_request_updates.append((step.new, rec.state, rec.rev))
    try:
        await ctx.store.commit(step.batch)
    except LeaseLost:
        raise  # another node runs this job now (vtn.leased_jobs): stop, not skip
    except Conflict:
        return False
    return True


def _expire(step: _Step, ven: Ven, now: datetime) -> None:
    step.batch.log.append(_entry("report.expired", ven, step.old, now))
    step.set(step.old, state=S.CANCELLED, next_check_at=None)


async def check_one(ctx: Context, rec: ReportRequestRecord, now: datetime) -> bool:
    """Act on one due request; False when another process (or the VEN) got there first."""
    ven = await ctx.store.get_ven(rec.ven_id)
    if ven is None or not ven.registered:
        step = _Step(rec)
        step.set(rec, state=S.CANCELLED, next_check_at=None)
    elif rec.state is S.PENDING and rec.attempts > 0 and ven.liveness == "offline":
        # nothing reaches an offline VEN: wait for it without using up the attempts
        step = _Step(rec)
        step.set(rec, next_check_at=now + timedelta(seconds=ctx.config.reports.ack_timeout_s))
    else:
        step = await _decide(ctx, rec, ven, now)
    if step.new is None:
        return False
    step.batch.report_request_updates.append((step.new, rec.state, rec.rev))
    try:
        await ctx.store.commit(step.batch)
    except LeaseLost:
        raise  # another node runs this job now (vtn.leased_jobs): stop, not skip
    except Conflict:
        return False
    return True


async def check(ctx: Context) -> int:
    """Scheduler job: every due report request, in bounded batches; returns the steps."""
    cfg = ctx.config.reports
    done = 0
    for _ in range(MAX_ROUNDS):
        now = ctx.clock()
        due = await ctx.store.due_report_requests(now, cfg.check_batch)
        for rec in due:
            try:
                done += await check_one(ctx, rec, now)
            except LeaseLost:
                raise
            except Exception:  # one bad record must not stop the others
                _log.exception("report request %s of %s", rec.report_request_id, rec.ven_id)
        if len(due) < cfg.check_batch:
            break
    return done
