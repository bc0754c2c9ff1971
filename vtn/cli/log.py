"""``vtn log``: read (and follow) the append-only event log."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from vtn.app import Vtn
from vtn.cli.common import config_from, dump, store_options, with_vtn


@click.group("log")
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
        with_vtn(config, run, must_exist=True)
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
