"""``vtn reports``: ask a VEN for a report, list report requests and their state, stop one.

``request`` queues the oadrCreateReport at once (delivered on the VEN's next poll);
``cancel`` an oadrCancelReport. States: pending, active, overdue, silent,
cancel_pending, cancelled (see docs/osb-profile.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from registry.models import ReportRequestRecord
from registry.port import SERVICE
from vtn.cli.common import config_from, dump, store_options, with_vtn


@click.group("reports")
def reports_group() -> None:
    """Report requests: on demand, their state, cancelling."""


async def _ven(vtn: Any, ven_id: str) -> Any:
    ven = await vtn.store.get_ven(ven_id)
    if ven is None:
        raise click.ClickException(f"no VEN {ven_id}")
    return ven


@reports_group.command("request")
@store_options
@click.argument("ven_id")
@click.option("--rid", "r_ids", multiple=True, help="An rID (repeatable).")
@click.option("--device", "device_ids", multiple=True,
              help="A DER's device_id, mapped to its rIDs (repeatable).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["usage", "status"]),
              help="For --device: which rIDs (default usage).")
@click.option("--granularity", "granularity_s", type=float, required=True, help="Seconds.")
@click.option("--report-back", "report_back_s", type=float, default=None,
              help="Seconds between reports (default: the granularity).")
@click.option("--duration", "duration_s", type=float, default=None,
              help="reportInterval length in seconds (default: open-ended, renewed).")
@click.option("--json", "as_json", is_flag=True)
def request_cmd(config_path: str | None, data_dir: Path | None, ven_id: str,
                r_ids: tuple[str, ...], device_ids: tuple[str, ...], kinds: tuple[str, ...],
                granularity_s: float, report_back_s: float | None, duration_s: float | None,
                as_json: bool) -> None:
    """Ask VEN_ID for a report (oadrCreateReport on its next poll)."""
    from pydantic import ValidationError

    from registry.report_requests import ReportOrder
    from vtn.services.report_orders import request_report

    try:
        order = ReportOrder(r_ids=list(r_ids), device_ids=list(device_ids),
                            kinds=list(kinds) or ["usage"], granularity_s=granularity_s,
                            report_back_duration_s=report_back_s, duration_s=duration_s)
    except ValidationError as exc:
        raise click.ClickException(exc.errors()[0]["msg"]) from exc
    config = config_from(config_path, data_dir)

    async def act(vtn: Any) -> list[ReportRequestRecord]:
        return await request_report(vtn.ctx, await _ven(vtn, ven_id), order, actor="cli")

    recs = with_vtn(config, act, must_exist=True)
    if as_json:
        click.echo(dump(recs))
        return
    for r in recs:
        click.echo(f"queued {r.report_request_id} ({r.report_specifier_id}, {len(r.r_ids)} rIDs,"
                   f" every {r.granularity_s:g} s)")


def _table(recs: list[ReportRequestRecord]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("reportRequestID", "VEN", "specifier", "rIDs", "granularity", "state",
                  "origin", "attempts", "acknowledged", "last report")
    for r in recs:
        table.add_row(
            r.report_request_id, r.ven_id, r.report_specifier_id, str(len(r.r_ids)),
            f"{r.granularity_s:g} s", r.state.value, r.origin, str(r.attempts),
            r.acknowledged_at.isoformat(timespec="seconds") if r.acknowledged_at else "-",
            r.last_report_at.isoformat(timespec="seconds") if r.last_report_at else "-",
        )
    Console().print(table)


@reports_group.command("list")
@store_options
@click.argument("ven_id", required=False)
@click.option("--der", "device_id", default=None, help="Requests covering this DER's rIDs.")
@click.option("--all", "show_all", is_flag=True, help="Include cancelled requests.")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(config_path: str | None, data_dir: Path | None, ven_id: str | None,
             device_id: str | None, show_all: bool, as_json: bool) -> None:
    """Report requests of VEN_ID (or of every VEN, or of one DER) with their state."""
    from registry.report_requests import covering

    config = config_from(config_path, data_dir)

    async def act(vtn: Any) -> list[ReportRequestRecord]:
        if device_id is not None:
            der = await vtn.store.get_der(device_id, SERVICE)
            if der is None:
                raise click.ClickException(f"no DER {device_id}")
            return covering(await vtn.store.report_requests_of_ven(der.ven_id), der)
        vens = [await _ven(vtn, ven_id)] if ven_id else await vtn.store.list_vens(SERVICE)
        out: list[ReportRequestRecord] = []
        for v in vens:
            out.extend(await vtn.store.report_requests_of_ven(v.ven_id))
        return out

    recs = with_vtn(config, act, must_exist=True)
    if not show_all:
        recs = [r for r in recs if r.state.value != "cancelled"]
    if as_json:
        click.echo(dump(recs))
    else:
        _table(recs)


@reports_group.command("cancel")
@store_options
@click.argument("ven_id")
@click.argument("report_request_id")
def cancel_cmd(config_path: str | None, data_dir: Path | None, ven_id: str,
               report_request_id: str) -> None:
    """Stop one of VEN_ID's reports (oadrCancelReport on its next poll)."""
    from vtn.services.reports import request_cancel_report

    config = config_from(config_path, data_dir)

    async def act(vtn: Any) -> None:
        await request_cancel_report(vtn.ctx, await _ven(vtn, ven_id), report_request_id)

    with_vtn(config, act, must_exist=True)
    click.echo(f"cancel of {report_request_id} queued; delivered on the VEN's next poll")
