"""``vtn groups``: DER groups (IEC 61968-5) — list, create, change members, status,
forecast, CIM view. Runs against the store directly, as the operator (service scope)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from registry import group_status, groups
from registry.group_cim import cim_group
from registry.group_model import Group
from registry.port import SERVICE, Conflict
from vtn.app import Vtn
from vtn.cli.common import config_from, dump, store_options, with_vtn


@click.group("groups")
def groups_group() -> None:
    """DER groups: static, dynamic (a filter) or both; offered to aggregator VENs."""


def _filters(pairs: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs as a filter (lists stay comma-separated: the model splits them)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--filter")
        out[key.strip()] = value.strip()
    return out


def _ids(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _run(config_path: str | None, data_dir: Path | None,
         action: Callable[[Vtn], Awaitable[Any]]) -> Any:
    config = config_from(config_path, data_dir)
    try:
        return with_vtn(config, action)
    except groups.GroupError as exc:
        raise click.ClickException(f"invalid group: {exc}") from exc
    except (groups.ReservedName, group_status.ForecastError) as exc:
        raise click.ClickException(str(exc)) from exc
    except Conflict as exc:
        raise click.ClickException(f"conflict: {exc}") from exc
    except ValidationError as exc:
        raise click.ClickException(f"invalid group: {exc.errors()[0]['msg']}") from exc


async def _group(vtn: Vtn, ref: str, aggregator: str | None) -> Group:
    found = await groups.find_group(vtn.store, SERVICE, ref, aggregator)
    if found is None:
        owner = f"{aggregator}/" if aggregator else ""
        raise click.ClickException(f"no group {owner}{ref}")
    return found


def _line(g: Group) -> str:
    kind = "static" if g.filters is None else json.dumps(g.filters)
    return (f"{g.group_id}\t{g.aggregator_id or '-'}/{g.name}\tv{g.version}\t{kind}"
            f"\t+{g.includes} -{g.excludes}")


_AGG = click.option("--aggregator", default=None,
                    help="The owning aggregator_id (absent: the service's own group).")


@groups_group.command("list")
@store_options
@click.option("--aggregator", default=None, help="Only this aggregator's groups.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
def groups_list(config_path: str | None, data_dir: Path | None, aggregator: str | None,
                as_json: bool) -> None:
    """List groups (id, owner/name, version, filters, explicit members)."""
    rows = _run(config_path, data_dir, lambda vtn: vtn.store.list_groups(SERVICE, aggregator))
    click.echo(dump(rows) if as_json else "\n".join(_line(g) for g in rows))


@groups_group.command("create")
@store_options
@click.option("--name", required=True, help="Group name (letters, digits, . _ -).")
@_AGG
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="A GET /api/v1/ders filter (repeat; lists comma-separated).")
@click.option("--static", is_flag=True, help="No filter: only --include members.")
@click.option("--include", default=None, help="Device ids, comma-separated.")
@click.option("--exclude", default=None, help="Device ids, comma-separated.")
@click.option("--description", default=None)
def groups_create(config_path: str | None, data_dir: Path | None, name: str,
                  aggregator: str | None, filters: tuple[str, ...], static: bool,
                  include: str | None, exclude: str | None, description: str | None) -> None:
    """Create a group."""
    if static and filters:
        raise click.UsageError("--static takes no --filter")

    async def action(vtn: Vtn) -> Group:
        return await groups.create_group(
            vtn.store, aggregator, name, description=description,
            filters=None if static else _filters(filters), include=_ids(include),
            exclude=_ids(exclude), actor="operator", now=datetime.now(UTC))

    click.echo(f"created {_line(_run(config_path, data_dir, action))}")


@groups_group.command("delete")
@store_options
@click.argument("group")
@_AGG
def groups_delete(config_path: str | None, data_dir: Path | None, group: str,
                  aggregator: str | None) -> None:
    """Delete a group (by id, or by name with --aggregator for an aggregator's)."""

    async def action(vtn: Vtn) -> Group:
        g = await _group(vtn, group, aggregator)
        await groups.delete_group(vtn.store, g, if_version=None, actor="operator",
                                  now=datetime.now(UTC))
        return g

    g = _run(config_path, data_dir, action)
    click.echo(f"deleted group {g.aggregator_id or '-'}/{g.name}")


def _member_command(name: str, field: str, help_text: str) -> None:
    @groups_group.command(name, help=help_text)
    @store_options
    @click.argument("group")
    @click.argument("device_ids")
    @_AGG
    def command(config_path: str | None, data_dir: Path | None, group: str,
                device_ids: str, aggregator: str | None) -> None:
        async def action(vtn: Vtn) -> tuple[Group, dict[str, list[str]]]:
            g = await _group(vtn, group, aggregator)
            return await groups.change_members(
                vtn.store, g, **{field: _ids(device_ids)}, if_version=None,
                actor="operator", now=datetime.now(UTC))

        g, done = _run(config_path, data_dir, action)
        counts = ", ".join(f"{k} {len(v)}" for k, v in done.items())
        click.echo(f"{g.aggregator_id or '-'}/{g.name} v{g.version}: {counts}")


_member_command("include", "include", "Include DEVICE_IDS (comma-separated) explicitly.")
_member_command("exclude", "exclude", "Exclude DEVICE_IDS even if the filter matches.")
_member_command("remove", "remove", "Drop DEVICE_IDS from the explicit lists.")


@groups_group.command("members")
@store_options
@click.argument("group")
@_AGG
@click.option("--json", "as_json", is_flag=True)
def groups_members(config_path: str | None, data_dir: Path | None, group: str,
                   aggregator: str | None, as_json: bool) -> None:
    """Print the group's members (device_id, ven_id, type, class, liveness, W)."""

    async def action(vtn: Vtn) -> list[Any]:
        g = await _group(vtn, group, aggregator)
        return await groups.group_members(vtn.store, SERVICE, g.group_id)

    rows = _run(config_path, data_dir, action)
    if as_json:
        click.echo(json.dumps([{k: getattr(r, k) for k in r.__slots__} for r in rows],
                              indent=2))
        return
    for r in rows:
        click.echo(f"{r.device_id}\t{r.ven_id}\t{r.device_type}\t{r.device_class}\t"
                   f"{r.liveness}\t{r.available_capacity}")


@groups_group.command("status")
@store_options
@click.argument("group")
@_AGG
@click.option("--cim", is_flag=True, help="As IEC 61968-5 names it (EndDeviceGroup).")
def groups_status(config_path: str | None, data_dir: Path | None, group: str,
                  aggregator: str | None, cim: bool) -> None:
    """The group's roll-up now, as JSON."""

    async def action(vtn: Vtn) -> dict[str, Any]:
        g = await _group(vtn, group, aggregator)
        rollup = await group_status.rollup(vtn.store, g, SERVICE, datetime.now(UTC))
        return cim_group(g, rollup) if cim else rollup.as_json()

    click.echo(json.dumps(_run(config_path, data_dir, action), indent=2))


@groups_group.command("forecast")
@store_options
@click.argument("group")
@_AGG
@click.option("--hours", default=24.0, show_default=True, type=click.FloatRange(0, 168,
                                                                                 min_open=True))
@click.option("--slot-min", default=15.0, show_default=True, type=click.FloatRange(1, 1440))
@click.option("--json", "as_json", is_flag=True)
def groups_forecast(config_path: str | None, data_dir: Path | None, group: str,
                    aggregator: str | None, hours: float, slot_min: float,
                    as_json: bool) -> None:
    """Available flexibility per slot (W) over the horizon."""

    async def action(vtn: Vtn) -> dict[str, Any]:
        g = await _group(vtn, group, aggregator)
        slot = timedelta(minutes=slot_min)
        now = datetime.now(UTC)
        start = now - (now - datetime(2000, 1, 1, tzinfo=UTC)) % slot
        return await group_status.forecast(vtn.store, g, SERVICE, start,
                                           timedelta(hours=hours), slot)

    body = _run(config_path, data_dir, action)
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    for s in body["slots"]:
        click.echo(f"{s['start']}\t{s['available_w']:.0f} W\tcommitted {s['committed_w']:.0f}"
                   f"\topted out {s['opted_out_w']:.0f}")
