"""``vtn status``, ``vtn backup`` and ``vtn restore``: the operator's first question and
a consistent copy of a live store.

``backup`` uses SQLite's online backup API from its own connection: one step under one
read transaction, so the copy is the store as of one instant even while ``vtn serve``
writes (WAL readers do not block writers). ``restore`` checks the file is a vtn store
this version can open, then moves it into place; stop the server first.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import click

from registry.port.ops import FleetSummary
from registry.sqlite import migrations
from vtn.app import Vtn
from vtn.cli.common import config_from, store_options, with_vtn
from vtn.config import Config
from vtn.security.files import create_private

LIVENESS = ("online", "stale", "offline")


def _kw(watts: float) -> str:
    return f"{watts / 1000:,.1f}"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


@click.command("status")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def status_cmd(config_path: str | None, data_dir: Path | None, as_json: bool) -> None:
    """VENs and DERs by liveness, capacity by device class (kW), outbox, store size."""
    config = config_from(config_path, data_dir)

    async def act(vtn: Vtn) -> FleetSummary:
        return await vtn.store.fleet_summary()

    s: FleetSummary = with_vtn(config, act, must_exist=True)
    if as_json:
        click.echo(json.dumps(vars(s), indent=2))
        return
    vens, ders = sum(s.vens_by_liveness.values()), sum(s.ders_by_liveness.values())

    def states(counts: dict[str, int]) -> str:
        return ", ".join(f"{counts.get(k, 0)} {k}" for k in LIVENESS)

    click.echo(f"store    {config.store.url or config.sqlite_path}  ({_size(s.size_bytes)}, "
               f"schema v{s.schema_version})")
    click.echo(f"VENs     {vens} ({s.vens_registered} registered): {states(s.vens_by_liveness)}")
    click.echo(f"DERs     {ders}: {states(s.ders_by_liveness)}")
    click.echo(f"outbox   {s.outbox_pending} messages waiting for a poll")
    if s.capacity_by_class:
        click.echo(f"{'class':<16}{'DERs':>8}{'max kW':>12}{'available kW':>15}")
        for cls, (n, cap, avail) in sorted(s.capacity_by_class.items()):
            click.echo(f"{cls:<16}{int(n):>8}{_kw(cap):>12}{_kw(avail):>15}")


def _sqlite_only(config: Config, what: str) -> Path:
    if config.store.url.startswith(("mongodb://", "mongodb+srv://")):
        raise click.ClickException(f"{what} is for the SQLite store; for MongoDB use "
                                   "mongodump/mongorestore, or vtn export / vtn import")
    return config.sqlite_path


@click.command("backup")
@store_options
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
def backup_cmd(config_path: str | None, data_dir: Path | None, dest: Path) -> None:
    """Write a consistent copy of the live SQLite store to DEST (safe while serving)."""
    config = config_from(config_path, data_dir)
    src_path = _sqlite_only(config, "vtn backup")
    if not src_path.exists():
        raise click.ClickException(f"no store at {src_path}")
    if dest.exists():
        raise click.ClickException(f"{dest} exists; choose another name")
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    create_private(tmp)  # a backup holds the registry: 0600 like the store
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=30)
    try:
        out = sqlite3.connect(tmp)
        try:
            src.backup(out)  # one step: the store as of one read transaction
            out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            out.close()
    finally:
        src.close()
    os.replace(tmp, dest)
    info = _inspect(dest)
    click.echo(f"backup of {src_path} written to {dest} ({info['vens']} VENs, "
               f"{info['ders']} DERs, schema v{info['version']})")


def _inspect(path: Path) -> dict[str, Any]:
    """Counts of a store file, refusing what is not one (or one from a newer vtn)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            version = migrations.version_of(db)
            vens = db.execute("SELECT count(*) FROM vens").fetchone()[0]
            ders = db.execute("SELECT count(*) FROM ders").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise click.ClickException(f"{path} is not a vtn store: {exc}") from exc
    if check != "ok":
        raise click.ClickException(f"{path} is damaged: {check}")
    if version > migrations.CURRENT:
        raise click.ClickException(f"{path} has schema v{version}, newer than this vtn's "
                                   f"(v{migrations.CURRENT}): upgrade vtn first")
    return {"version": version, "vens": vens, "ders": ders}


@click.command("restore")
@store_options
@click.argument("backup", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--force", is_flag=True, help="Replace an existing store.")
def restore_cmd(config_path: str | None, data_dir: Path | None, backup: Path,
                force: bool) -> None:
    """Replace the SQLite store with BACKUP (stop vtn serve first; migrated on next start)."""
    config = config_from(config_path, data_dir)
    dest = _sqlite_only(config, "vtn restore")
    info = _inspect(backup)
    if dest.exists() and not force:
        raise click.ClickException(f"a store exists at {dest}: stop vtn serve, then "
                                   "rerun with --force to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".restoring")
    tmp.unlink(missing_ok=True)
    create_private(tmp)
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        out = sqlite3.connect(tmp)
        try:
            src.backup(out)
        finally:
            out.close()
    finally:
        src.close()
    for suffix in ("-wal", "-shm"):  # the old store's journal must not apply to the new
        dest.with_name(dest.name + suffix).unlink(missing_ok=True)
    os.replace(tmp, dest)
    click.echo(f"restored {backup} to {dest} ({info['vens']} VENs, {info['ders']} DERs, "
               f"schema v{info['version']})")
