"""``vtn vens``: provision and inspect VENs; queue cancel / re-registration for a poll."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

import click

from registry.models import Liveness, Ven, VenRole
from registry.port import SERVICE
from vtn.app import Vtn
from vtn.cli.common import config_from, dump, store_options, with_vtn
from vtn.cli.tables import enum_choice, print_table, table_options


@click.group("vens")
def vens() -> None:
    """Provision and inspect VENs."""


@vens.command("add")
@store_options
@click.option("--name", default=None,
              help="oadrVenName the VEN registers with; with --count a pattern such as "
                   "'osb-{n:05d}' (ven-sim's names).")
@click.option("--count", type=click.IntRange(1), default=None,
              help="Provision this many VENs, --name numbered from --start.")
@click.option("--start", type=click.IntRange(0), default=1, show_default=True)
@click.option("--from-file", "from_file", type=click.File("r", encoding="utf-8"), default=None,
              help="One VEN a line: NAME[,ACCOUNT[,AGGREGATOR]] (# comments; - is stdin).")
@click.option("--account", default=None, help="Account (prosumer) that owns its DERs.")
@click.option("--aggregator", default=None, help="Aggregator its DERs belong to.")
@click.option("--ven-id", default=None, help="Fix the venID (default: a new UUID).")
@click.option("--fingerprint", default=None, help="Client certificate fingerprint.")
@click.option("--role", type=click.Choice([r.value for r in VenRole]), default="osb")
@click.option("--json", "as_json", is_flag=True, help="Print the VEN as JSON.")
def vens_add(
    config_path: str | None, data_dir: Path | None, name: str | None, count: int | None,
    start: int, from_file: TextIO | None, account: str | None, aggregator: str | None,
    ven_id: str | None, fingerprint: str | None, role: str, as_json: bool,
) -> None:
    """Pre-provision VENs so they may register (one, --count of a pattern, or a file)."""
    from vtn.services.admin import provision_ven

    rows = _planned(name, count, start, from_file, account, aggregator)
    if len(rows) > 1 and (ven_id or fingerprint):
        raise click.UsageError("--ven-id and --fingerprint name one VEN, not several")
    config = config_from(config_path, data_dir)

    async def provision(vtn: Vtn) -> list[Ven]:
        taken = [n for n, _, _ in rows if await vtn.store.find_ven_by_name(n) is not None]
        if taken:  # all or none: nothing half-provisioned
            more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
            raise click.ClickException(f"a VEN named {taken[0]!r}{more} exists already")
        return [await provision_ven(
            vtn.ctx, name=n, account_id=acc, aggregator_id=agg, ven_id=ven_id,
            fingerprint=fingerprint, role=VenRole(role)) for n, acc, agg in rows]

    added: list[Ven] = with_vtn(config, provision)
    if as_json:
        click.echo(dump(added))
    elif len(added) == 1:
        click.echo(f"provisioned {added[0].ven_name} venID={added[0].ven_id}")
    else:
        click.echo(f"provisioned {len(added)} VENs ({added[0].ven_name} .. {added[-1].ven_name})")


def _planned(name: str | None, count: int | None, start: int, from_file: TextIO | None,
             account: str | None, aggregator: str | None) -> list[tuple[str, Any, Any]]:
    """(name, account, aggregator) of every VEN to provision."""
    if from_file is not None:
        if name or count:
            raise click.UsageError("--from-file or --name, not both")
        rows = []
        for line in from_file:
            fields = [f.strip() for f in line.split("#", 1)[0].split(",")]
            if fields and fields[0]:
                fields += [""] * (3 - len(fields))
                rows.append((fields[0], fields[1] or account, fields[2] or aggregator))
        if not rows:
            raise click.UsageError("--from-file: no VEN names in the file")
        return rows
    if not name:
        raise click.UsageError("--name (or --from-file) is required")
    if count is None:
        return [(name, account, aggregator)]
    try:
        names = [name.format(n=i) for i in range(start, start + count)]
    except (KeyError, IndexError, ValueError) as exc:
        raise click.BadParameter(f"{name!r} is not a pattern like 'osb-{{n:05d}}' ({exc})",
                                 param_hint="--name") from None
    if len(set(names)) != len(names):
        raise click.BadParameter("with --count the name needs {n}, e.g. 'osb-{n:05d}'",
                                 param_hint="--name")
    return [(n, account, aggregator) for n in names]


@vens.command("list")
@store_options
@click.option("--liveness", multiple=True, type=enum_choice(Liveness))
@click.option("--aggregator", default=None, help="Only VENs of this aggregator_id.")
@click.option("--registered/--unregistered", "registered", default=None,
              help="Only VENs that are (not) registered.")
@click.option("--name", "name_prefix", default=None, help="Only names starting with this.")
@table_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
def vens_list(config_path: str | None, data_dir: Path | None, liveness: tuple[str, ...],
              aggregator: str | None, registered: bool | None, name_prefix: str | None,
              limit: int, wide: bool, as_json: bool) -> None:
    """List VENs with their registration and liveness."""
    config = config_from(config_path, data_dir)
    rows: list[Ven] = with_vtn(config, lambda vtn: vtn.store.list_vens(SERVICE),
                               must_exist=True)
    rows = [v for v in rows
            if (not liveness or v.liveness.value in liveness)
            and (aggregator is None or v.aggregator_id == aggregator)
            and (registered is None or v.registered == registered)
            and (name_prefix is None or v.ven_name.startswith(name_prefix))]
    more, rows = len(rows) > limit, rows[:limit]
    if as_json:
        click.echo(dump(rows))
        return
    from rich.table import Table

    columns = ["name", "registered", "liveness", "last seen", "aggregator"]
    table = Table(*(["venID", *columns, "account"] if wide else columns))
    for v in rows:
        cells = [v.ven_name, "yes" if v.registered else "no", v.liveness.value,
                 v.last_seen.strftime("%m-%d %H:%M:%S") if v.last_seen else "-",
                 v.aggregator_id or "-"]
        table.add_row(*([v.ven_id, *cells, v.account_id or "-"] if wide else cells))
    print_table(table, len(rows), more, "VENs", wide)


def _ven_action(name: str, doc: str, action: str) -> None:
    @vens.command(name, help=doc)
    @store_options
    @click.argument("ven")
    def command(config_path: str | None, data_dir: Path | None, ven: str) -> None:
        from vtn.services import admin

        config = config_from(config_path, data_dir)
        with_vtn(config, lambda vtn: getattr(admin, action)(vtn.ctx, ven), must_exist=True)
        click.echo(f"queued for {ven}; delivered on its next poll")


_ven_action("cancel", "Cancel a VEN's registration (oadrCancelPartyRegistration on poll).",
            "cancel_registration")
_ven_action("reregister", "Ask a VEN to register again (oadrRequestReregistration on poll).",
            "request_reregistration")
