"""Report specs (what a VEN offers), report requests (what the VTN asked for) and the
telemetry history (load per DER rID in time buckets, for measured response)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from registry.models import ReportRequestRecord, ReportSpec
from registry.port.batch import TelemetryBucket


class ReportStore(Protocol):
    async def report_specs_of_ven(self, ven_id: str) -> list[ReportSpec]: ...
    async def get_report_request(
        self, ven_id: str, report_request_id: str
    ) -> ReportRequestRecord | None: ...
    async def report_requests_of_ven(self, ven_id: str) -> list[ReportRequestRecord]: ...

    async def due_report_requests(
        self, now: datetime, limit: int = 100
    ) -> list[ReportRequestRecord]:
        """Open requests (pending, active, overdue, silent, cancel_pending) whose
        next_check_at has passed, earliest first (the watch job's input)."""
        ...

    async def telemetry_history(
        self, device_ids: list[str], start: datetime, end: datetime
    ) -> list[TelemetryBucket]:
        """The buckets of these DERs that start in [start, end)."""
        ...
