"""``vtn ders``: inspect the DER registry."""

from __future__ import annotations

from pathlib import Path

import click

from registry.port import SERVICE, DerQuery
from vtn.cli.common import config_from, dump, store_options, with_vtn


@click.group("ders")
def ders() -> None:
    """Inspect the DER registry."""


@ders.command("list")
@store_options
@click.option("--class", "device_class", multiple=True, help="Filter by device class.")
@click.option("--ven", "ven_id", default=None, help="Only DERs of this venID.")
@click.option("--liveness", multiple=True, help="online / stale / offline.")
@click.option("--limit", type=int, default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
def ders_list(
    config_path: str | None, data_dir: Path | None, device_class: tuple[str, ...],
    ven_id: str | None, liveness: tuple[str, ...], limit: int, as_json: bool,
) -> None:
    """List DERs."""
    config = config_from(config_path, data_dir)
    query = DerQuery(
        ven_id=ven_id, device_class=list(device_class) or None,
        liveness=list(liveness) or None, limit=limit,
    )
    rows = with_vtn(config, lambda vtn: vtn.store.list_ders(query, SERVICE), must_exist=True)
    if as_json:
        click.echo(dump(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("device_id", "name", "class", "type", "liveness", "max W", "avail W", "venID")
    for d in rows:
        table.add_row(
            d.device_id, d.device_name, d.device_class.value, d.device_type.value,
            d.liveness.value, _num(d.max_capacity), _num(d.available_capacity), d.ven_id,
        )
    Console().print(table)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"
