"""``vtn views``: saved discovery queries offered to aggregator VENs over OpenADR."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from registry import views as registry_views
from registry.port import SERVICE
from vtn.app import Vtn
from vtn.cli.common import config_from, dump, store_options, with_vtn


@click.group("views")
def views_group() -> None:
    """Views: saved DER queries of aggregators (offered to their VENs as reports)."""


def _filters(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--filter")
        out[key.strip()] = value.strip()
    return out


@views_group.command("add")
@store_options
@click.option("--aggregator", required=True, help="The owning aggregator_id.")
@click.option("--name", required=True, help="View name (letters, digits, . _ -).")
@click.option(
    "--filter", "filters", multiple=True, metavar="KEY=VALUE",
    help="A GET /api/v1/ders filter, e.g. device_class=dhwDevice or near=52.5,13.4 "
    "(repeat for more; lists comma-separated).",
)
@click.option("--description", default=None)
@click.option("--replace", is_flag=True, help="Replace a view of that name.")
def views_add(
    config_path: str | None, data_dir: Path | None, aggregator: str, name: str,
    filters: tuple[str, ...], description: str | None, replace: bool,
) -> None:
    """Save a view; the aggregator's VENs are told at the next membership refresh."""
    config = config_from(config_path, data_dir)

    async def action(vtn: Vtn) -> Any:
        return await registry_views.save_view(
            vtn.store, aggregator, name, _filters(filters), description, "operator",
            datetime.now(UTC), replace=replace,
        )

    try:
        view, created = with_vtn(config, action)
    except registry_views.ViewError as exc:
        raise click.ClickException(f"invalid filters: {exc}") from exc
    except (registry_views.ReservedName, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from exc
    except ValidationError as exc:
        raise click.ClickException(f"invalid view: {exc.errors()[0]['msg']}") from exc
    verb = "created" if created else "replaced"
    click.echo(f"{verb} view {view.aggregator_id}/{view.name} {json.dumps(view.filters)}")


@views_group.command("list")
@store_options
@click.option("--aggregator", default=None, help="Only this aggregator's views.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
def views_list(config_path: str | None, data_dir: Path | None, aggregator: str | None,
               as_json: bool) -> None:
    """List saved views (every aggregator also has the default view 'all')."""
    config = config_from(config_path, data_dir)
    rows = with_vtn(config, lambda vtn: registry_views.list_views(vtn.store, SERVICE, aggregator))
    if as_json:
        click.echo(dump(rows))
        return
    for v in rows:
        click.echo(f"{v.aggregator_id}/{v.name}\t{json.dumps(v.filters)}")


@views_group.command("delete")
@store_options
@click.option("--aggregator", required=True)
@click.option("--name", required=True)
def views_delete(config_path: str | None, data_dir: Path | None, aggregator: str,
                 name: str) -> None:
    """Delete a view; reports aggregator VENs requested on it end."""
    config = config_from(config_path, data_dir)
    found = with_vtn(config, lambda vtn: registry_views.delete_view(
        vtn.store, aggregator, name, "operator", datetime.now(UTC)))
    if not found:
        raise click.ClickException(f"no view {aggregator}/{name}")
    click.echo(f"deleted view {aggregator}/{name}")
