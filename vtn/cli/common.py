"""What every ``vtn`` command shares: the ``--config`` / ``--data-dir`` options, loading
the configuration, opening the store for one action, and JSON output.

Every subcommand takes ``--config`` and ``--data-dir`` so the tools work on the same
store as the running server (``VTN_*`` environment variables apply too).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from vtn.app import Vtn
from vtn.cli.errors import validation_summary
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
    where = f" in {config_path}" if config_path else ""
    try:
        return load_config(config_path, data_dir=data_dir, **overrides)
    except ValidationError as exc:  # one line: the keys and messages, no pydantic URL
        raise click.ClickException(
            f"invalid configuration{where}: {validation_summary(exc)}") from exc
    except Exception as exc:  # TOML syntax
        raise click.ClickException(f"invalid configuration{where}: {exc}") from exc


def require_store(config: Config) -> None:
    """Read commands refuse a SQLite store that is not there (a typo in --data-dir
    would otherwise create a new, empty one and show nothing)."""
    if config.store.url.startswith(("mongodb://", "mongodb+srv://")):
        return
    path = config.sqlite_path
    if not path.exists():
        raise click.ClickException(
            f"no store at {path} (check --data-dir / --config / VTN_DATA_DIR; "
            "`vtn vens add` or `vtn serve` creates one)")


def with_vtn(
    config: Config, action: Callable[[Vtn], Awaitable[Any]], *, must_exist: bool = False
) -> Any:
    """Open the store, run one action, close it (no background jobs). ``must_exist``:
    a read command, which refuses a store that does not exist (:func:`require_store`)."""
    if must_exist:
        require_store(config)

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
