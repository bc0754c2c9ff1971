"""``vtn events``: dispatch, list, show, modify and cancel demand-response events.

Works on the local store like the other groups, through the same manager functions as
the HTTP API (:mod:`registry.event_manager`), as actor ``cli`` with a service scope.
Answers are shaped by :mod:`registry.api.event_views`, so ``show --json`` equals
``GET /api/v1/events/{id}``. Failures are one line on stderr and exit status 1
(``vtn --debug ...`` shows the traceback).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from registry.events import EventSignal, EventStatus, EventTargets
from registry.port import SERVICE, EventQuery, StoreError
from vtn.app import Vtn
from vtn.cli.common import config_from, store_options, with_vtn

ACTOR = "cli"
EVENT_ID = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
# --units: the item kind a signal's values are in (see docs/demand-response.md)
ITEM_KINDS = {"ELECTRICITY_PRICE": "currencyPerKWh", "ENERGY_PRICE": "currencyPerKWh",
              "DEMAND_CHARGE": "currencyPerKW", "BID_PRICE": "currency",
              "BID_ENERGY": "energyReal"}


def seconds(text: str, option: str) -> float:
    """``90``, ``90s``, ``30m``, ``1h30m``, ``2d`` -> seconds."""
    text = text.strip().lower()
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2) or "s"]
        pos = match.end()
    if not text or pos != len(text):
        raise click.ClickException(f"{option}: {text!r} is not a duration like 30m, 1h, 90s")
    return total


def start_time(text: str, now: datetime, option: str = "--start") -> datetime:
    """``now``, ``+10m`` (relative), or ISO 8601 (without a zone: UTC)."""
    text = text.strip()
    now = now.replace(microsecond=0)
    if text == "now":
        return now
    if text.startswith("+"):
        return now + timedelta(seconds=seconds(text[1:], option))
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.ClickException(f"{option}: {text!r} is not ISO 8601, 'now' or +10m") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def split(duration_s: float, values: list[float]) -> list[dict[str, float]]:
    """Intervals of equal length filling ``duration_s`` (the last one takes the rest)."""
    if duration_s == 0:
        if len(values) != 1:
            raise click.ClickException("an open-ended event (duration 0) has one value")
        return [{"duration_s": 0.0, "value": values[0]}]
    step = duration_s / len(values)
    out = [{"duration_s": step, "value": v} for v in values]
    out[-1]["duration_s"] = duration_s - step * (len(values) - 1)
    return out


def signals(specs: tuple[str, ...], duration_s: float, units: str | None,
            item_kind: str | None) -> list[dict[str, Any]]:
    """``NAME:TYPE:VALUE[,VALUE...]`` -> signal data, intervals splitting the duration."""
    out = []
    for spec in specs:
        parts = spec.split(":")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise click.ClickException(f"--signal: {spec!r} is not NAME:TYPE:VALUE[,VALUE...]")
        name, kind, raw = (p.strip() for p in parts)
        try:
            values = [float(v) for v in raw.split(",")]
        except ValueError:
            raise click.ClickException(f"--signal: {raw!r} are not numbers") from None
        sig: dict[str, Any] = {"signal_name": name.upper(), "signal_type": kind,
                               "intervals": split(duration_s, values)}
        if units:
            sig["units"] = units
            sig["item_kind"] = item_kind or ITEM_KINDS.get(name.upper(), "powerReal")
        out.append(sig)
    return out


def _first_error(exc: ValidationError) -> str:
    e = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in e["loc"])
    return f"{where}: {e['msg']}" if where else str(e["msg"])


def run(ctx: click.Context, config_path: str | None, data_dir: Path | None,
        action: Callable[[Vtn], Awaitable[Any]], what: str = "event") -> Any:
    """Run ``action`` on the store; refusals become one line and exit status 1."""
    from registry.event_manager import EventError

    config = config_from(config_path, data_dir)
    try:
        return with_vtn(config, action, must_exist=True)
    except click.ClickException:
        raise
    except EventError as exc:
        field = f"{exc.field}: " if exc.field else ""
        raise click.ClickException(f"{field}{exc.detail}") from exc
    except ValidationError as exc:
        raise click.ClickException(f"invalid {what}: {_first_error(exc)}") from exc
    except StoreError as exc:
        raise click.ClickException(f"store: {exc}") from exc
    except Exception as exc:
        if ctx.find_root().params.get("debug"):
            raise
        raise click.ClickException(f"{type(exc).__name__}: {exc} (--debug for details)") from exc


def _targets(vens: tuple[str, ...], ders: tuple[str, ...], groups: tuple[str, ...]
             ) -> dict[str, list[str]]:
    return {"ven_ids": list(vens), "device_ids": list(ders), "groups": list(groups)}


TARGETS = [
    click.option("--ven", "vens", multiple=True, help="Target this venID (repeatable)."),
    click.option("--der", "ders", multiple=True, help="Target this device_id (repeatable)."),
    click.option("--group", "groups", multiple=True, help="Target a saved view (repeatable)."),
]
SIGNAL = [
    click.option("--signal", "signal_specs", multiple=True, metavar="NAME:TYPE:VALUE[,VALUE]",
                 help="e.g. SIMPLE:level:1,2,1 or LOAD_DISPATCH:delta:-500 (repeatable); "
                 "the values split the duration into equal intervals."),
    click.option("--units", default=None, help="Units of the signal values (W, kW, EUR, ...)."),
    click.option("--item-kind", default=None,
                 type=click.Choice(["powerReal", "energyReal", "currency", "currencyPerKWh",
                                    "currencyPerKW"]),
                 help="Item of --units (default by signal name: powerReal for loads)."),
]


def _with(options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def decorate(fn: Any) -> Any:
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate


def _print_event(doc: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    summary = doc.get("summary")
    reach = f" for {summary['vens']} VENs, {summary['ders']} DERs" if summary else ""
    click.echo(f"{verb} event {doc['event_id']} (modification {doc['modification_number']})"
               f"{reach}; status {doc['status_now']}")


@click.group("events")
def events_group() -> None:
    """Demand-response events: dispatch, list, show, modify, cancel."""


@events_group.command("create")
@store_options
@click.option("--program", required=True, help="Program (the 2.0b market context).")
@click.option("--start", "start", default="now", show_default=True,
              help="ISO 8601 time (UTC without a zone), 'now', or relative like +10m.")
@click.option("--duration", required=True, help="e.g. 1h, 30m, 90s; 0 = open-ended.")
@_with(SIGNAL)
@_with(TARGETS)
@click.option("--priority", type=click.IntRange(0, 2**32 - 1), default=None)
@click.option("--test", "test_event", is_flag=True, help="Mark it a test event.")
@click.option("--no-response", is_flag=True, help="VENs need not opt in or out.")
@click.option("--ramp-up", default=None, help="Ramp-up window before the start (e.g. 5m).")
@click.option("--notification", default=None, help="Notification window (e.g. 1h).")
@click.option("--comment", default=None, help="vtnComment.")
@click.option("--id", "event_id", default=None, help="Event id (default: a new UUID).")
@click.option("--json", "as_json", is_flag=True, help="Print the event as JSON.")
@click.pass_context
def events_create(ctx: click.Context, config_path: str | None, data_dir: Path | None,
                  program: str, start: str, duration: str, signal_specs: tuple[str, ...],
                  units: str | None, item_kind: str | None, vens: tuple[str, ...],
                  ders: tuple[str, ...], groups: tuple[str, ...], priority: int | None,
                  test_event: bool, no_response: bool, ramp_up: str | None,
                  notification: str | None, comment: str | None, event_id: str | None,
                  as_json: bool) -> None:
    """Dispatch an event to VENs / DERs / groups; their VENs get it on the next poll."""
    from registry.api.event_views import EventIn, event_out
    from registry.event_manager import create_event

    if not signal_specs:
        raise click.ClickException("--signal: at least one signal")
    if event_id is not None and not EVENT_ID.fullmatch(event_id):
        raise click.ClickException("--id: letters, digits and . _ ~ : - (at most 128)")
    duration_s = seconds(duration, "--duration")

    async def action(vtn: Vtn) -> dict[str, Any]:
        now = vtn.ctx.clock()
        data: dict[str, Any] = {
            "program": program, "dtstart": start_time(start, now), "duration_s": duration_s,
            "signals": signals(signal_specs, duration_s, units, item_kind),
            "targets": _targets(vens, ders, groups), "priority": priority,
            "test_event": test_event, "response_required": not no_response,
            "vtn_comment": comment,
            "ramp_up_s": seconds(ramp_up, "--ramp-up") if ramp_up else None,
            "notification_s": seconds(notification, "--notification") if notification else None,
        }
        if event_id:
            data["event_id"] = event_id
        event, deliveries = await create_event(vtn.store, EventIn.model_validate(data).to_event(),
                                               SERVICE, actor=ACTOR, now=now)
        doc = event_out(event, now)
        doc["summary"] = {"vens": len(deliveries),
                          "ders": sum(len(d.device_ids) for d in deliveries)}
        return doc

    _print_event(run(ctx, config_path, data_dir, action), as_json, "created")


@events_group.command("list")
@store_options
@click.option("--status", "statuses", multiple=True,
              type=click.Choice([s.value for s in EventStatus]), help="Status now (repeatable).")
@click.option("--ven", "ven_id", default=None, help="With a delivery to this venID.")
@click.option("--der", "device_id", default=None, help="Targeting this device_id.")
@click.option("--program", default=None)
@click.option("--aggregator", "aggregator_id", default=None, help="Created by this tenant.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@click.pass_context
def events_list(ctx: click.Context, config_path: str | None, data_dir: Path | None,
                statuses: tuple[str, ...], ven_id: str | None, device_id: str | None,
                program: str | None, aggregator_id: str | None, limit: int,
                as_json: bool) -> None:
    """List events in event_id order with their status now."""
    from registry.api.event_views import event_out, stored_statuses

    wanted = {EventStatus(s) for s in statuses}

    async def action(vtn: Vtn) -> list[dict[str, Any]]:
        now = vtn.ctx.clock()
        query = EventQuery(status=stored_statuses(sorted(wanted)), ven_id=ven_id,
                           device_id=device_id, program=program,
                           aggregator_id=aggregator_id, limit=min(limit, 1000))
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            page = await vtn.store.list_events(query, SERVICE)
            out += [event_out(e, now) for e in page if not wanted or e.status_at(now) in wanted]
            if len(page) < query.limit:
                break
            query.after_event_id = page[-1].event_id
        return out[:limit]

    rows = run(ctx, config_path, data_dir, action)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("event_id", "program", "status", "start", "duration", "mod", "signals",
                  "priority", "aggregator")
    for e in rows:
        table.add_row(
            e["event_id"], e["program"], e["status_now"], e["dtstart"][:19],
            f"{e['duration_s']:g} s", str(e["modification_number"]),
            ", ".join(s["signal_name"] for s in e["signals"]),
            "-" if e["priority"] is None else str(e["priority"]), e["aggregator_id"] or "-",
        )
    Console().print(table)


@events_group.command("show")
@store_options
@click.argument("event_id")
@click.option("--json", "as_json", is_flag=True, help="The same document as the API's GET.")
@click.pass_context
def events_show(ctx: click.Context, config_path: str | None, data_dir: Path | None,
                event_id: str, as_json: bool) -> None:
    """Show an event, each VEN's delivery and answer, and the totals."""
    from registry.api.event_views import event_detail

    async def action(vtn: Vtn) -> dict[str, Any]:
        event = await vtn.store.get_event(event_id, SERVICE)
        if event is None:
            raise click.ClickException(f"no event {event_id}")
        deliveries = await vtn.store.deliveries_of_event(event_id, SERVICE)
        return event_detail(event, deliveries, vtn.ctx.clock(), 100_000)

    doc = run(ctx, config_path, data_dir, action)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    _show(doc)


def _show(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    end = f"{doc['duration_s']:g} s" if doc["duration_s"] else "open-ended"
    console.print(f"[bold]{doc['event_id']}[/] program {doc['program']}  status "
                  f"[bold]{doc['status_now']}[/]  modification {doc['modification_number']}")
    console.print(f"start {doc['dtstart']}  duration {end}  priority "
                  f"{doc['priority'] if doc['priority'] is not None else '-'}  response "
                  f"{'required' if doc['response_required'] else 'not required'}"
                  f"{'  TEST' if doc['test_event'] else ''}", markup=False)
    for sig, now in zip(doc["signals"], doc["values_now"], strict=True):
        values = ", ".join(f"{iv['value']:g}" for iv in sig["intervals"])
        console.print(f"  {sig['signal_id']}: {sig['signal_name']}/{sig['signal_type']} "
                      f"[{values}] {sig['units'] or ''} now {now['value']:g}", markup=False)
    table = Table("venID", "DERs", "delivered", "response", "opt at", "resource opts")
    for d in doc["deliveries"]:
        table.add_row(
            d["ven_id"], str(len(d["ders"])),
            "-" if d["delivered_mod"] is None else f"mod {d['delivered_mod']}",
            d["response"], d["opt_at"] or "-",
            ", ".join(f"{r}={o}" for r, o in d["resource_opts"].items()) or "-",
        )
    console.print(table)
    t = doc["totals"]
    console.print(f"{t['vens']} VENs, {t['ders']} DERs: {t['opted_in']} opted in, "
                  f"{t['opted_out']} opted out, {t['no_response']} no response, "
                  f"{t['not_required']} not required, {t['pending']} pending", markup=False)


@events_group.command("modify")
@store_options
@click.argument("event_id")
@_with(SIGNAL)
@click.option("--start", "start", default=None, help="New start (as for create).")
@click.option("--duration", default=None, help="New duration; without --signal the "
              "current values are spread over it.")
@_with(TARGETS)
@click.option("--priority", type=click.IntRange(0, 2**32 - 1), default=None)
@click.option("--program", default=None)
@click.option("--comment", default=None, help="vtnComment.")
@click.option("--reason", default=None, help="modificationReason.")
@click.option("--json", "as_json", is_flag=True, help="Print the event as JSON.")
@click.pass_context
def events_modify(ctx: click.Context, config_path: str | None, data_dir: Path | None,
                  event_id: str, signal_specs: tuple[str, ...], units: str | None,
                  item_kind: str | None, start: str | None, duration: str | None,
                  vens: tuple[str, ...], ders: tuple[str, ...], groups: tuple[str, ...],
                  priority: int | None, program: str | None, comment: str | None,
                  reason: str | None, as_json: bool) -> None:
    """Change an event (bumps its modificationNumber; its VENs get it again)."""
    from registry.api.event_views import EventPatch, event_out
    from registry.event_manager import modify_event

    async def action(vtn: Vtn) -> dict[str, Any]:
        now = vtn.ctx.clock()
        current = await vtn.store.get_event(event_id, SERVICE)
        if current is None:
            raise click.ClickException(f"no event {event_id}")
        changes: dict[str, Any] = {}
        duration_s = current.duration_s
        if duration is not None:
            duration_s = changes["duration_s"] = seconds(duration, "--duration")
        if signal_specs:
            changes["signals"] = signals(signal_specs, duration_s, units, item_kind)
        elif duration is not None:
            changes["signals"] = [_respread(s, duration_s) for s in current.signals]
        if start is not None:
            changes["dtstart"] = start_time(start, now)
        if vens or ders or groups:
            changes["targets"] = EventTargets.model_validate(
                _targets(vens, ders, groups)).model_dump()
        for key, value in (("priority", priority), ("program", program),
                           ("vtn_comment", comment), ("modification_reason", reason)):
            if value is not None:
                changes[key] = value
        if not changes:
            raise click.ClickException("nothing to change (see --help)")
        changes = EventPatch.model_validate(changes).changes()  # the API's bounds
        event = await modify_event(vtn.store, event_id, changes, SERVICE, actor=ACTOR,
                                   now=now)
        return event_out(event, now)

    _print_event(run(ctx, config_path, data_dir, action), as_json, "modified")


def _respread(sig: EventSignal, duration_s: float) -> dict[str, Any]:
    data = sig.model_dump()
    data["intervals"] = split(duration_s, [iv.value for iv in sig.intervals])
    return data


@events_group.command("cancel")
@store_options
@click.argument("event_id")
@click.option("--json", "as_json", is_flag=True, help="Print the event as JSON.")
@click.pass_context
def events_cancel(ctx: click.Context, config_path: str | None, data_dir: Path | None,
                  event_id: str, as_json: bool) -> None:
    """Cancel an event (idempotent); its VENs get the cancellation on the next poll."""
    from registry.api.event_views import event_out
    from registry.event_manager import cancel_event

    async def action(vtn: Vtn) -> dict[str, Any]:
        now = vtn.ctx.clock()
        event = await cancel_event(vtn.store, event_id, SERVICE, actor=ACTOR, now=now)
        return event_out(event, now)

    _print_event(run(ctx, config_path, data_dir, action), as_json, "cancelled")
