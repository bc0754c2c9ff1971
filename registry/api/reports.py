"""/api/v1/vens/{ven_id}/report-requests and /api/v1/ders/{device_id}/report-requests.

Reports on demand (issue #14) and the state of every report request (issue #21):
``pending`` / ``active`` / ``overdue`` / ``silent`` / ``cancel_pending`` / ``cancelled``.
A new request or a cancel is written to the store here and sent to the VEN by the watch
job (``[reports] check_s``) on its next poll. Scope: a service acts on any VEN, an
aggregator on its own VENs, a prosumer only reads its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from registry.api.common import (
    ApiError,
    from_validation,
    invalid,
    json_response,
    scope_of,
    store_of,
)
from registry.api.openapi import Op
from registry.models import OPEN_REPORT_STATES, LogEntry, ReportRequestRecord, Ven
from registry.port import Batch, Conflict
from registry.report_requests import OrderError, ReportOrder, cancel_record, covering, plan_order


class ReportRequestOut(BaseModel):
    ven_id: str
    report_request_id: str
    report_specifier_id: str
    r_ids: list[str]
    granularity_s: float
    report_back_duration_s: float
    state: str
    origin: str
    created_at: datetime
    interval_start: datetime | None = None
    interval_duration_s: float | None = None
    requested_at: datetime | None = None
    attempts: int = 0
    acknowledged_at: datetime | None = None
    last_report_at: datetime | None = None
    replaces: str | None = None
    replaced_by: str | None = None


class ReportRequestList(BaseModel):
    items: list[ReportRequestOut] = Field(default_factory=list)


def _out(rec: ReportRequestRecord) -> dict[str, Any]:
    fields = set(ReportRequestOut.model_fields)
    return ReportRequestOut.model_validate(rec.model_dump(include=fields)).model_dump(
        mode="json")


async def _ven(request: web.Request, write: bool) -> Ven:
    scope = scope_of(request)
    if write and scope.role == "prosumer":
        raise ApiError(403, "forbidden", "prosumers may only read report requests")
    ven = await store_of(request).find_ven(request.match_info["ven_id"], scope)
    if ven is None:
        raise ApiError(404, "not found", "no such VEN")
    return ven


def _entry(kind: str, ven: Ven, request: web.Request, now: datetime, **data: Any) -> LogEntry:
    return LogEntry(kind=kind, at=now, actor=f"api:{scope_of(request).role}", ven_id=ven.ven_id,
                    aggregator_id=ven.aggregator_id, account_id=ven.account_id, data=data)


async def list_requests(request: web.Request) -> web.Response:
    ven = await _ven(request, write=False)
    recs = await store_of(request).report_requests_of_ven(ven.ven_id)
    return json_response({"items": [_out(r) for r in recs]})


async def create_request(request: web.Request) -> web.Response:
    ven = await _ven(request, write=True)
    if not ven.registered:
        raise ApiError(409, "conflict", "the VEN is not registered")
    try:
        order = ReportOrder.model_validate(await request.json())
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            raise from_validation(exc, "body") from exc
        raise invalid("body", "not JSON") from exc
    store = store_of(request)
    now = datetime.now(UTC)
    try:
        recs = plan_order(order, ven.ven_id, await store.ders_of_ven(ven.ven_id), now,
                          "operator")
    except OrderError as exc:
        raise invalid(exc.field, exc.message) from exc
    await store.commit(Batch(report_requests=recs, log=[_entry(
        "report.ordered", ven, request, now, report_request_ids=[r.report_request_id for r in recs],
        granularity_s=order.granularity_s, duration_s=order.duration_s)]))
    return json_response({"items": [_out(r) for r in recs]}, status=202)


async def cancel_request(request: web.Request) -> web.Response:
    ven = await _ven(request, write=True)
    store = store_of(request)
    rr_id = request.match_info["report_request_id"]
    rec = await store.get_report_request(ven.ven_id, rr_id)
    if rec is None:
        raise ApiError(404, "not found", "no such report request")
    if rec.state not in OPEN_REPORT_STATES:
        raise ApiError(409, "conflict", f"the report request is {rec.state.value}")
    now = datetime.now(UTC)
    new = cancel_record(rec, now)
    try:
        await store.commit(Batch(report_request_updates=[(new, rec.state, rec.rev)], log=[
            _entry("report.cancel_ordered", ven, request, now, report_request_id=rr_id)]))
    except Conflict as exc:
        raise ApiError(409, "conflict", "the report request changed meanwhile; retry") from exc
    return json_response(_out(new), status=202)


async def der_requests(request: web.Request) -> web.Response:
    store = store_of(request)
    der = await store.get_der(request.match_info["device_id"], scope_of(request))
    if der is None:
        raise ApiError(404, "not found", "no such DER")
    recs = covering(await store.report_requests_of_ven(der.ven_id), der)
    return json_response({"items": [_out(r) for r in recs]})


def operations() -> list[Op]:
    ven = {"ven_id": "the venID"}
    return [
        Op("GET", "/v1/vens/{ven_id}/report-requests", list_requests,
           "A VEN's report requests and their state", path_params=ven,
           response=ReportRequestList, errors=(404,),
           description="pending (sent, not acknowledged), active, overdue (not "
           "acknowledged after every retry), silent (acknowledged, reports stopped), "
           "cancel_pending, cancelled."),
        Op("POST", "/v1/vens/{ven_id}/report-requests", create_request,
           "Ask a VEN for a report (oadrCreateReport)", path_params=ven, body=ReportOrder,
           response=ReportRequestList, errors=(400, 403, 404, 409), status=202,
           description="rIDs, or device ids mapped to their usage/status rIDs; one "
           "request per report specifier. Sent on the VEN's next poll."),
        Op("DELETE", "/v1/vens/{ven_id}/report-requests/{report_request_id}",
           cancel_request, "Stop a report (oadrCancelReport)",
           path_params={**ven, "report_request_id": "the reportRequestID"},
           response=ReportRequestOut, errors=(403, 404, 409), status=202),
        Op("GET", "/v1/ders/{device_id}/report-requests", der_requests,
           "The report requests covering one DER's rIDs", path_params={
               "device_id": "the DER's device_id"},
           response=ReportRequestList, errors=(404,)),
    ]
