"""``vtn dispatches``: group dispatch ("group G delivers X kW from T1 to T2") — create,
list, show the status, cancel.

Works on the local store like ``vtn events``, through the same code as
``/api/v1/dispatches``: the request is validated by the API's ``DispatchIn``, created and
cancelled by :mod:`registry.dispatch_manager`, its status answered by
:mod:`registry.dispatch_status` (``show --json`` equals ``GET .../status``). Actor ``cli``,
service scope. Dispatches are in kW throughout (the API's unit), JSON included.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from registry.group_dispatch import DispatchMode, GroupDispatch
from registry.port import SERVICE
from registry.port.dispatches import DispatchQuery
from vtn.app import Vtn
from vtn.cli.common import store_options
from vtn.cli.events import run, seconds, start_time
from vtn.cli.tables import print_table, table_options

ACTOR = "cli"
# the request's fields as the options that set them (error messages name the option)
OPTIONS = {"group": "--group", "slots": "--kw/--duration", "dtstart": "--start",
           "ramp_s": "--ramp", "baseline_s": "--baseline", "dispatch_id": "--id",
           "priority": "--priority", "program": "--program", "mode": "--mode"}


@click.group("dispatches")
def dispatches_group() -> None:
    """Group dispatch: a DER group delivers kW over a window, as DR events per VEN."""


def _values(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise click.ClickException(f"--kw: {text!r} are not numbers like 20 or 20,12"
                                   ) from None  # bounds (kW >= 0 ...): the request model's


def _span(begin: datetime, now: datetime, duration: str | None, end: str | None) -> float:
    """The window's length in seconds, from --duration or --end."""
    if (duration is None) == (end is None):
        raise click.ClickException("give --duration or --end (one of them)")
    if duration is not None:
        return seconds(duration, "--duration")
    until = start_time(end or "", now, "--end")
    if until <= begin:
        raise click.ClickException(f"--end: {until.isoformat()} is not after the start "
                                   f"{begin.isoformat()}")
    return (until - begin).total_seconds()


def slots(span_s: float, kws: list[float]) -> list[dict[str, float]]:
    """Equal slots filling the window (the last one takes the rest), one per value."""
    step = span_s / len(kws)
    out = [{"duration_s": step, "kw": kw} for kw in kws]
    out[-1]["duration_s"] = span_s - step * (len(kws) - 1)
    return out


def _request(data: dict[str, Any]) -> GroupDispatch:
    """The API's request model, its first complaint naming the option."""
    from registry.api.dispatch_views import DispatchIn

    try:
        return DispatchIn.model_validate(data).to_dispatch()
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = [str(p) for p in err["loc"]]
        where = OPTIONS.get(loc[0], loc[0]) if loc else "request"
        detail = f" ({'.'.join(loc)})" if len(loc) > 1 else ""
        raise click.ClickException(f"invalid dispatch: {where}{detail}: {err['msg']}"
                                   ) from None


def curve(values: list[float]) -> str:
    """kW per slot, short: ``20.00``, ``20.00/12.00``, or the range ``4.00..20.00``."""
    if len(values) <= 2:
        return "/".join(f"{v:,.2f}" for v in values)
    return f"{min(values):,.2f}..{max(values):,.2f}"


def _print_dispatch(doc: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    who = f"{doc['aggregator_id']}/" if doc["aggregator_id"] else ""
    line = (f"{verb} dispatch {doc['dispatch_id']} of group {who}"
            f"{doc['group_name'] or doc['group']} ({doc['mode']}); status {doc['status_now']}")
    s = doc.get("summary")
    if s:
        line += (f"; {s['assigned']} of {s['members']} members assigned, events queued "
                 f"for {s['vens']} VENs")
    click.echo(line)


@dispatches_group.command("create")
@store_options
@click.option("--group", required=True, help="The group: <aggregator_id>/<name>, the "
              "service's own by name, or a group id.")
@click.option("--kw", "kw_text", default=None, metavar="KW[,KW...]",
              help="kW to deliver (>= 0: load reduction or more generation); several "
              "values split the window into equal slots (a curve). --mode power only.")
@click.option("--start", "start", default="now", show_default=True,
              help="ISO 8601 time (UTC without a zone), 'now', or relative like +10m.")
@click.option("--duration", default=None, help="The window, e.g. 1h, 30m (or --end).")
@click.option("--end", default=None, help="End of the window (as --start; or --duration).")
@click.option("--mode", type=click.Choice([m.value for m in DispatchMode]), default="power",
              show_default=True, help="disconnect / connect: see docs/der-group-dispatch.md.")
@click.option("--ramp", default=None, help="Spread each change over this long (e.g. 2m).")
@click.option("--program", default=None, help="The events' marketContext "
              "(default group-dispatch).")
@click.option("--priority", type=int, default=None)
@click.option("--baseline", default=None, help="Measured-response baseline window "
              "(default 1h).")
@click.option("--id", "dispatch_id", default=None, help="Dispatch id (default: a new id).")
@click.option("--json", "as_json", is_flag=True, help="Print the dispatch as JSON.")
@click.pass_context
def dispatches_create(ctx: click.Context, config_path: str | None, data_dir: Path | None,
                      group: str, kw_text: str | None, start: str, duration: str | None,
                      end: str | None, mode: str, ramp: str | None, program: str | None,
                      priority: int | None, baseline: str | None, dispatch_id: str | None,
                      as_json: bool) -> None:
    """Split kW over a group's members; their VENs get DR events on the next poll."""
    from registry import dispatch_manager as manager
    from registry.api.dispatch_views import dispatch_created

    if (kw_text is None) == (mode == DispatchMode.POWER):
        raise click.ClickException("--kw: required with --mode power, and only with it")
    kws = _values(kw_text) if kw_text is not None else [0.0]

    async def action(vtn: Vtn) -> dict[str, Any]:
        now = vtn.ctx.clock()
        begin = start_time(start, now)
        data: dict[str, Any] = {
            "group": group, "mode": mode, "dtstart": begin,
            "slots": slots(_span(begin, now, duration, end), kws), "program": program,
            "priority": priority, "dispatch_id": dispatch_id,
            "ramp_s": seconds(ramp, "--ramp") if ramp else None,
            "baseline_s": seconds(baseline, "--baseline") if baseline else None}
        request = _request({k: v for k, v in data.items() if v is not None})
        d, members = await manager.create_dispatch(vtn.store, request, SERVICE, actor=ACTOR,
                                                   now=now)
        return dispatch_created(d, members, now)

    _print_dispatch(run(ctx, config_path, data_dir, action, "dispatch"), as_json, "created")


@dispatches_group.command("list")
@store_options
@click.option("--group", default=None, help="Only this group's (as for create, or its id).")
@click.option("--aggregator", "aggregator_id", default=None, help="Only this owner's groups.")
@click.option("--open", "open_only", is_flag=True, help="Only those not closed yet.")
@table_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@click.pass_context
def dispatches_list(ctx: click.Context, config_path: str | None, data_dir: Path | None,
                    group: str | None, aggregator_id: str | None, open_only: bool,
                    limit: int, wide: bool, as_json: bool) -> None:
    """List dispatches in dispatch_id order with their status now (kW)."""
    from registry.api.dispatch_views import dispatch_out
    from registry.dispatch_groups import GroupNotFound, resolve_group, stored_ref

    async def action(vtn: Vtn) -> list[dict[str, Any]]:
        now = vtn.ctx.clock()
        query = DispatchQuery(aggregator_id=aggregator_id, open_only=open_only,
                              limit=min(limit + 1, 1000))
        if group is not None:
            try:  # a name as create takes it; else the text as a group id (also a gone one)
                g = await resolve_group(vtn.store, SERVICE, group)
                query.group = stored_ref(g)
                query.aggregator_id = aggregator_id or g.aggregator_id
            except GroupNotFound:
                query.group = group
        out: list[GroupDispatch] = []
        while len(out) <= limit:
            page = await vtn.store.list_dispatches(query, SERVICE)
            out += page
            if len(page) < query.limit:
                break
            query.after_dispatch_id = page[-1].dispatch_id
        return [dispatch_out(d, now) for d in out[:limit + 1]]

    rows = run(ctx, config_path, data_dir, action, "dispatch")
    more, rows = len(rows) > limit, rows[:limit]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table()
    for name in ("dispatch", "group"):  # the ids give way (ellipsis) at 80 columns
        table.add_column(name, overflow="ellipsis")
    for name in ("status", "start UTC", "length", "kW", *(
            ("mode", "slots", "group id", "owner", "rev", "redisp.", "by") if wide else ())):
        table.add_column(name, no_wrap=True)
    for d in rows:
        kws = [s["kw"] for s in d["slots"]]
        cells = [d["dispatch_id"], d["group_name"] or d["group"], d["status_now"],
                 d["dtstart"][5:16].replace("T", " "),
                 _length(sum(s["duration_s"] for s in d["slots"])),
                 curve(kws) if d["mode"] == DispatchMode.POWER else d["mode"]]
        if wide:
            cells += [d["mode"], str(len(kws)), d["group"], d["aggregator_id"] or "-",
                      str(d["rev"]), str(d["redispatches"]), d["created_by"]]
        table.add_row(*cells)
    print_table(table, len(rows), more, "dispatches", wide)


def _length(s: float) -> str:
    """``2h``, ``1h30m``, ``45m``, ``90.5s``."""
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    text = (f"{h:g}h" if h else "") + (f"{m:g}m" if m else "") + (f"{sec:g}s" if sec else "")
    return text or "0s"


@dispatches_group.command("show")
@store_options
@click.argument("dispatch_id")
@table_options
@click.option("--json", "as_json", is_flag=True,
              help="The API's GET /dispatches/{id}/status (members: at most --limit).")
@click.pass_context
def dispatches_show(ctx: click.Context, config_path: str | None, data_dir: Path | None,
                    dispatch_id: str, limit: int, wide: bool, as_json: bool) -> None:
    """Requested vs assigned vs opted-in vs measured kW per slot, and the members."""
    from registry.dispatch_status import DispatchNotFound, dispatch_status

    async def action(vtn: Vtn) -> tuple[dict[str, Any], GroupDispatch | None, dict[str, str]]:
        try:
            doc = await dispatch_status(vtn.store, dispatch_id, SERVICE, vtn.ctx.clock(),
                                        limit)
        except DispatchNotFound:
            raise click.ClickException(f"no dispatch {dispatch_id}") from None
        if as_json:
            return doc, None, {}
        d = await vtn.store.get_dispatch(dispatch_id, SERVICE)
        return doc, d, await _names(vtn, doc["members"])

    doc, d, names = run(ctx, config_path, data_dir, action, "dispatch")
    if as_json or d is None:
        click.echo(json.dumps(doc, indent=2))
        return
    _show(doc, d, names, wide)


async def _names(vtn: Vtn, members: list[dict[str, Any]]) -> dict[str, str]:
    """Names of the listed members' DERs and VENs (ids -> device / VEN name)."""
    out: dict[str, str] = {}
    for ven_id in sorted({m["ven_id"] for m in members}):
        ven = await vtn.store.get_ven(ven_id)
        if ven is not None:
            out[ven_id] = ven.ven_name
        out.update({d.device_id: d.device_name for d in await vtn.store.ders_of_ven(ven_id)
                    if d.device_name})
    return out


def _show(doc: dict[str, Any], d: GroupDispatch, names: dict[str, str], wide: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=250) if wide else Console()
    owner = f"{d.aggregator_id}/" if d.aggregator_id else ""
    console.print(f"{doc['dispatch_id']}  group {owner}{d.group_name or d.group}  "
                  f"{doc['mode']}  status {doc['status']}  rev {doc['rev']}, "
                  f"{doc['redispatches']} re-dispatches", markup=False, highlight=False)
    console.print(f"{d.dtstart:%Y-%m-%d %H:%M} .. {d.end:%H:%M} UTC  program {d.program}  "
                  f"ramp {d.ramp_s:g} s  by {d.created_by}", markup=False, highlight=False)
    slots_table = Table("slot start", *(["end"] if wide else []), "requested", "assigned",
                        "opted in", "measured", "shortfall", title="kW per slot")
    for s in doc["slots"]:
        measured = "-" if s["measured_kw"] is None else f"{s['measured_kw']:,.2f}"
        slots_table.add_row(s["start"][5:16].replace("T", " "),
                            *([s["end"][5:16].replace("T", " ")] if wide else []),
                            *(f"{s[k]:,.2f}" for k in ("requested_kw", "assigned_kw",
                                                       "opted_in_kw")),
                            measured, f"{s['shortfall_kw']:,.2f}")
    console.print(slots_table)
    t = doc["totals"]
    states = ", ".join(f"{k} {v}" for k, v in sorted(t["states"].items())) or "none"
    answers = ", ".join(f"{k} {v}" for k, v in sorted(t["responses"].items())) or "none"
    console.print(f"{t['members']} members ({states}); {t['events']} events to {t['vens']} "
                  f"VENs; answers: {answers}", markup=False, highlight=False)
    columns = ["DER", "VEN", "state", "answer", "cap kW", "assigned kW"]
    table = Table(*(columns + ["device_id", "venID", "event"] if wide else columns))
    for m in doc["members"]:
        state = m["state"] + (f": {m['reason']}" if m["reason"] else "")
        cells = [names.get(m["device_id"], m["device_id"]), names.get(m["ven_id"], m["ven_id"]),
                 state, m["response"], f"{m['capacity_kw']:,.2f}", curve(m["assigned_kw"])]
        if wide:
            cells += [m["device_id"], m["ven_id"], m["event_id"] or "-"]
        table.add_row(*cells)
    print_table(table, len(doc["members"]), doc["members_truncated"], "members", wide)


@dispatches_group.command("cancel")
@store_options
@click.argument("dispatch_id")
@click.option("--json", "as_json", is_flag=True, help="Print the dispatch as JSON.")
@click.pass_context
def dispatches_cancel(ctx: click.Context, config_path: str | None, data_dir: Path | None,
                      dispatch_id: str, as_json: bool) -> None:
    """Cancel a dispatch (idempotent): its VENs get cancelled events on the next poll."""
    from registry import dispatch_manager as manager
    from registry.api.dispatch_views import dispatch_out

    async def action(vtn: Vtn) -> dict[str, Any]:
        now = vtn.ctx.clock()
        d = await manager.cancel_dispatch(vtn.store, dispatch_id, SERVICE, actor=ACTOR,
                                          now=now)
        return dispatch_out(d, now)

    _print_dispatch(run(ctx, config_path, data_dir, action, "dispatch"), as_json,
                    "cancelled")
