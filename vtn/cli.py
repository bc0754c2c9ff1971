"""The ``vtn`` command: serve, demo, and operator tools that read and change the store.

Every subcommand takes ``--config`` and ``--data-dir`` so the tools work on the same
store as the running server (``VTN_*`` environment variables apply too).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from registry.models import Ven, VenRole
from registry.port import SERVICE, DerQuery
from vtn.app import Vtn
from vtn.config import Config, load_config
from vtn.services.base import OadrError

F = TypeVar("F", bound=Callable[..., Any])


def store_options(fn: F) -> F:
    fn = click.option(
        "--data-dir", type=click.Path(path_type=Path), default=None,
        help="Directory of the embedded store (default ./data).",
    )(fn)
    fn = click.option(
        "--config", "config_path", type=click.Path(exists=True, dir_okay=False),
        default=None, help="TOML configuration file.",
    )(fn)
    return fn


def config_from(config_path: str | None, data_dir: Path | None, **overrides: Any) -> Config:
    try:
        return load_config(config_path, data_dir=data_dir, **overrides)
    except Exception as exc:  # pydantic / toml errors
        raise click.ClickException(f"invalid configuration: {exc}") from exc


def with_vtn(config: Config, action: Callable[[Vtn], Awaitable[Any]]) -> Any:
    """Open the store, run one action, close it (no background jobs)."""

    async def run() -> Any:
        vtn = Vtn(config, run_jobs=False)
        await vtn.start()
        try:
            return await action(vtn)
        finally:
            await vtn.stop()

    try:
        return asyncio.run(run())
    except OadrError as exc:
        raise click.ClickException(exc.description) from exc


def dump(rows: list[Any]) -> str:
    return json.dumps([r.model_dump(mode="json") for r in rows], indent=2)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Asynchronous OpenADR 2.0b VTN with an embedded DER registry."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.WARNING)


@main.command()
@store_options
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default 8080).")
@click.option("--workers", type=int, default=None, help="Processes sharing the port and store.")
def serve(
    config_path: str | None, data_dir: Path | None, host: str | None, port: int | None,
    workers: int | None,
) -> None:
    """Run the VTN (OpenADR 2.0b over HTTP) on the configured store."""
    from vtn.server import serve_forever

    config = config_from(
        config_path, data_dir, **{"http.host": host, "http.port": port, "http.workers": workers}
    )
    serve_forever(config)


@main.command()
@store_options
@click.option("--port", type=int, default=None, help="Listen port (default 8080).")
@click.option("--vens", type=int, default=3, show_default=True, help="Simulated OSBs.")
@click.option("--duration", type=float, default=20.0, show_default=True, help="Seconds.")
def demo(
    config_path: str | None, data_dir: Path | None, port: int | None, vens: int, duration: float
) -> None:
    """Start the VTN and a few simulated OSBs; show the registry filling up."""
    from vtn.demo import run_demo

    config = config_from(config_path, data_dir, **{"http.port": port})
    asyncio.run(run_demo(config, vens, duration))


# --- VENs -----------------------------------------------------------------------------


@main.group()
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
    rows: list[Ven] = with_vtn(config, lambda vtn: vtn.store.list_vens(SERVICE))
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
        with_vtn(config, lambda vtn: getattr(admin, action)(vtn.ctx, ven))
        click.echo(f"queued for {ven}; delivered on its next poll")


_ven_action("cancel", "Cancel a VEN's registration (oadrCancelPartyRegistration on poll).",
            "cancel_registration")
_ven_action("reregister", "Ask a VEN to register again (oadrRequestReregistration on poll).",
            "request_reregistration")


# --- DERs and log ---------------------------------------------------------------------


@main.group()
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
    rows = with_vtn(config, lambda vtn: vtn.store.list_ders(query, SERVICE))
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


@main.group("log")
def log_group() -> None:
    """Read the append-only event log."""


@log_group.command("tail")
@store_options
@click.option("-n", "--lines", type=int, default=20, show_default=True)
@click.option("--after", type=int, default=None, help="Entries after this sequence number.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new entries.")
@click.option("--json", "as_json", is_flag=True, help="JSON (an array; with --follow, lines).")
def log_tail(
    config_path: str | None, data_dir: Path | None, lines: int, after: int | None,
    follow: bool, as_json: bool,
) -> None:
    """Print the newest log entries."""
    config = config_from(config_path, data_dir)

    async def run(vtn: Vtn) -> None:
        start = after if after is not None else max(0, await vtn.store.last_seq() - lines)
        entries = await vtn.store.read_log(after=start, limit=lines if after is None else 10_000)
        if as_json and not follow:
            click.echo(dump(entries))
            return
        _print_entries(entries, as_json)
        last = entries[-1].seq or start if entries else start
        while follow:
            await asyncio.sleep(0.5)
            entries = await vtn.store.read_log(after=last, limit=1000)
            _print_entries(entries, as_json)
            if entries:
                last = entries[-1].seq or last

    try:
        with_vtn(config, run)
    except KeyboardInterrupt:
        sys.exit(0)


def _print_entries(entries: list[Any], as_json: bool) -> None:
    for e in entries:
        if as_json:
            click.echo(e.model_dump_json())
        else:
            who = e.ven_id or "-"
            data = json.dumps(e.data, default=str) if e.data else ""
            click.echo(f"{e.seq:>8} {e.at.isoformat(timespec='seconds')} {e.kind:<28} {who} {data}")


if __name__ == "__main__":
    # run the importable vtn.cli (with every subcommand registered below), not this
    # __main__ copy: the subcommand modules import their helpers from vtn.cli
    from vtn.cli import main as _main

    _main()

from vtn.cli_certs import certs_group  # noqa: E402

main.add_command(certs_group)

from vtn.cli_api import token_group  # noqa: E402

main.add_command(token_group)

from vtn.cli_store import export_cmd, import_cmd, store_group  # noqa: E402

main.add_command(store_group)
main.add_command(export_cmd)
main.add_command(import_cmd)

from vtn.cli_views import views_group  # noqa: E402

main.add_command(views_group)
