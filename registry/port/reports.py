"""Report specs (what a VEN offers) and report requests (what the VTN asked for)."""

from __future__ import annotations

from typing import Protocol

from registry.models import ReportRequestRecord, ReportSpec


class ReportStore(Protocol):
    async def report_specs_of_ven(self, ven_id: str) -> list[ReportSpec]: ...
    async def get_report_request(
        self, ven_id: str, report_request_id: str
    ) -> ReportRequestRecord | None: ...
    async def report_requests_of_ven(self, ven_id: str) -> list[ReportRequestRecord]: ...
