"""``vtn store check|init``, ``vtn export`` and ``vtn import``: operate on the store itself.

They use the same ``--config`` / ``--data-dir`` / ``VTN_STORE_URL`` as the server, so
``VTN_STORE_URL=mongodb://... vtn import dump.jsonl`` fills the database a VTN will run
on. A store that cannot be reached is a one-line error and exit status 1, not a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from registry.port import StoreError
from registry.transfer import export_store, import_store
from vtn.app import Vtn
from vtn.cli.common import config_from, store_options, with_vtn
from vtn.config import Config
from vtn.security.files import open_private


def _run(config: Config, action: Callable[[Vtn], Awaitable[Any]], must_exist: bool = False
         ) -> Any:
    try:
        return with_vtn(config, action, must_exist=must_exist)
    except StoreError as exc:
        raise click.ClickException(f"store: {exc}") from exc


def _describe(config: Config) -> dict[str, Any]:
    url = config.store.url
    if url.startswith(("mongodb://", "mongodb+srv://")):
        return {"store": "mongodb"}
    return {"store": "sqlite", "path": str(config.sqlite_path)}


async def _check(vtn: Vtn) -> dict[str, Any]:
    check = getattr(vtn.store, "check", None)
    if check is not None:
        return dict(await check())
    return {"reachable": True, "missing_indexes": []}


@click.group("store")
def store_group() -> None:
    """Check or prepare the configured store (SQLite file or MongoDB)."""


@store_group.command("check")
@store_options
def store_check(config_path: str | None, data_dir: Path | None) -> None:
    """Print reachability, server version and missing indexes as JSON (exit 1 if unhealthy)."""
    config = config_from(config_path, data_dir)
    report = _describe(config)
    try:
        report.update(with_vtn(config, _check))
    except StoreError as exc:
        report.update(reachable=False, error=str(exc))
    click.echo(json.dumps(report, indent=2, default=str))
    if not report.get("reachable") or report.get("missing_indexes"):
        sys.exit(1)


@store_group.command("init")
@store_options
def store_init(config_path: str | None, data_dir: Path | None) -> None:
    """Create the schema / indexes (idempotent; the server also does it on start)."""
    config = config_from(config_path, data_dir)

    async def init(vtn: Vtn) -> dict[str, Any]:
        init_indexes = getattr(vtn.store, "init_indexes", None)
        if init_indexes is not None:
            await init_indexes()
        return await _check(vtn)

    report = {**_describe(config), **_run(config, init)}
    click.echo(json.dumps(report, indent=2, default=str))


@click.command("export")
@store_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of standard output.")
def export_cmd(config_path: str | None, data_dir: Path | None, output: Path | None) -> None:
    """Dump the whole store as JSON lines (vtn export > dump.jsonl)."""
    config = config_from(config_path, data_dir)

    async def export(vtn: Vtn) -> dict[str, int]:
        if output is None:
            return await export_store(vtn.store, sys.stdout)
        with open_private(output, "w", encoding="utf-8") as out:  # a dump holds the registry
            return await export_store(vtn.store, out)

    counts = _run(config, export, must_exist=True)
    click.echo(f"exported {json.dumps(counts)}", err=True)


@click.command("import")
@store_options
@click.argument("dump", type=click.File("r", encoding="utf-8"))
def import_cmd(config_path: str | None, data_dir: Path | None, dump: Any) -> None:
    """Load a JSON-lines dump (idempotent: importing twice changes nothing)."""
    config = config_from(config_path, data_dir)

    async def load(vtn: Vtn) -> dict[str, int]:
        return await import_store(vtn.store, dump)

    try:
        counts = _run(config, load)
    except (ValueError, KeyError) as exc:  # a line that is not a dump record
        raise click.ClickException(f"invalid dump: {exc}") from exc
    click.echo(f"imported {json.dumps(counts)}", err=True)
