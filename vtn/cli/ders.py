"""``vtn ders``: inspect the DER registry."""

from __future__ import annotations

from pathlib import Path

import click

from registry.models import Der, DeviceClass, Liveness
from registry.port import SERVICE, DerQuery
from vtn.app import Vtn
from vtn.cli.common import config_from, dump, store_options, with_vtn
from vtn.cli.tables import enum_choice, kw, print_table, resolve_ven, table_options


@click.group("ders")
def ders() -> None:
    """Inspect the DER registry."""


@ders.command("list")
@store_options
@click.option("--class", "device_class", multiple=True, type=enum_choice(DeviceClass),
              help="Filter by device class (repeat for several).")
@click.option("--ven", "ven", default=None, help="Only DERs of this VEN (venID or name).")
@click.option("--liveness", multiple=True, type=enum_choice(Liveness))
@table_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array (W).")
def ders_list(
    config_path: str | None, data_dir: Path | None, device_class: tuple[str, ...],
    ven: str | None, liveness: tuple[str, ...], limit: int, wide: bool, as_json: bool,
) -> None:
    """List DERs (capacities in kW; --json in W)."""
    config = config_from(config_path, data_dir)

    async def act(vtn: Vtn) -> tuple[list[Der], dict[str, str]]:
        ven_id = (await resolve_ven(vtn.store, ven)).ven_id if ven else None
        query = DerQuery(
            ven_id=ven_id, device_class=[DeviceClass(c).value for c in device_class] or None,
            liveness=list(liveness) or None, limit=limit + 1,
        )
        rows = await vtn.store.list_ders(query, SERVICE)
        names = {v.ven_id: v.ven_name for v in await vtn.store.list_vens(SERVICE)
                 if v.ven_id in {d.ven_id for d in rows}}
        return rows, names

    rows, names = with_vtn(config, act, must_exist=True)
    more, rows = len(rows) > limit, rows[:limit]
    if as_json:
        click.echo(dump(rows))
        return
    from rich.table import Table

    columns = ["name", "class", "liveness", "max kW", "avail kW", "VEN"]
    table = Table(*(["device_id", *columns, "venID"] if wide else columns))
    for d in rows:
        cells = [d.device_name, d.device_class.value, d.liveness.value, kw(d.max_capacity),
                 kw(d.available_capacity), names.get(d.ven_id, d.ven_id)]
        table.add_row(*([d.device_id, *cells, d.ven_id] if wide else cells))
    print_table(table, len(rows), more, "DERs", wide)
