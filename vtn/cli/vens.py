"""``vtn vens``: provision and inspect VENs; queue cancel / re-registration for a poll."""

from __future__ import annotations

from pathlib import Path

import click

from registry.models import Ven, VenRole
from registry.port import SERVICE
from vtn.cli.common import config_from, dump, store_options, with_vtn


@click.group("vens")
def vens() -> None:
    """Provision and inspect VENs."""


@vens.command("add")
@store_options
@click.option("--name", required=True, help="oadrVenName the VEN registers with.")
@click.option("--account", default=None, help="Account (prosumer) that owns its DERs.")
@click.option("--aggregator", default=None, help="Aggregator its DERs belong to.")
@click.option("--ven-id", default=None, help="Fix the venID (default: a new UUID).")
@click.option("--fingerprint", default=None, help="Client certificate fingerprint.")
@click.option("--role", type=click.Choice([r.value for r in VenRole]), default="osb")
@click.option("--json", "as_json", is_flag=True, help="Print the VEN as JSON.")
def vens_add(
    config_path: str | None, data_dir: Path | None, name: str, account: str | None,
    aggregator: str | None, ven_id: str | None, fingerprint: str | None, role: str,
    as_json: bool,
) -> None:
    """Pre-provision a VEN so it may register."""
    from vtn.services.admin import provision_ven

    config = config_from(config_path, data_dir)
    ven = with_vtn(
        config,
        lambda vtn: provision_ven(
            vtn.ctx, name=name, account_id=account, aggregator_id=aggregator, ven_id=ven_id,
            fingerprint=fingerprint, role=VenRole(role),
        ),
    )
    click.echo(dump([ven]) if as_json else f"provisioned {ven.ven_name} venID={ven.ven_id}")


@vens.command("list")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
def vens_list(config_path: str | None, data_dir: Path | None, as_json: bool) -> None:
    """List VENs with their registration and liveness."""
    config = config_from(config_path, data_dir)
    rows: list[Ven] = with_vtn(config, lambda vtn: vtn.store.list_vens(SERVICE), must_exist=True)
    if as_json:
        click.echo(dump(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("venID", "name", "registered", "liveness", "last seen", "aggregator", "account")
    for v in rows:
        table.add_row(
            v.ven_id, v.ven_name, "yes" if v.registered else "no", v.liveness.value,
            v.last_seen.isoformat(timespec="seconds") if v.last_seen else "-",
            v.aggregator_id or "-", v.account_id or "-",
        )
    Console().print(table)


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
