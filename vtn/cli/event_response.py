"""``vtn events response EVENT_ID``: the measured response of a DR event (issue #14).

A standalone click command (``response_command``) for the ``vtn events`` group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vtn.cli.common import config_from, store_options, with_vtn


def _kw(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.3f}"


@click.command("response")
@store_options
@click.argument("event_id")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--ders", "show_ders", is_flag=True, help="One row per DER too.")
def response_command(config_path: str | None, data_dir: Path | None, event_id: str,
                     as_json: bool, show_ders: bool) -> None:
    """Baseline, load while active and delivered change (kW) per VEN and in total."""
    import json
    from datetime import UTC, datetime

    from registry.port import SERVICE
    from registry.response import ResponseNotFound, measured_response

    config = config_from(config_path, data_dir)

    async def act(vtn: Any) -> dict[str, Any]:
        try:
            return await measured_response(vtn.store, event_id, SERVICE, datetime.now(UTC))
        except ResponseNotFound as exc:
            raise click.ClickException(f"no event {event_id}") from exc

    body = with_vtn(config, act, must_exist=True)
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("VEN / DER", "DERs", "baseline kW", "event kW", "delivered kW", "samples",
                  title=f"event {event_id} ({body['status']})")
    for v in body["vens"]:
        table.add_row(v["ven_id"], f"{v['ders_measured']}/{v['ders']}", _kw(v["baseline_w"]),
                      _kw(v["event_w"]), _kw(v["delivered_w"]), str(v["samples"]))
        if show_ders:
            for d in body["ders"]:
                if d["ven_id"] == v["ven_id"]:
                    table.add_row("  " + d["device_id"], d["baseline_source"] or "-",
                                  _kw(d["baseline_w"]), _kw(d["event_w"]),
                                  _kw(d["delivered_w"]), str(d["samples"]))
    t = body["total"]
    table.add_row("total", f"{t['ders_measured']}/{t['ders']}", _kw(t["baseline_w"]),
                  _kw(t["event_w"]), _kw(t["delivered_w"]), str(t["samples"]))
    Console().print(table)
