"""``vtn demo``: the VTN and a few simulated OSBs (the demo itself is :mod:`vtn.demo`)."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from pathlib import Path

import click

from vtn.cli.common import config_from, store_options


@click.command("demo")
@store_options
@click.option("--port", type=int, default=None,
              help="Listen port (default 8080, or a free one when 8080 is taken).")
@click.option("--vens", type=int, default=3, show_default=True, help="Simulated OSBs.")
@click.option("--duration", type=float, default=90.0, show_default=True,
              help="Seconds the demo runs; its DR event fills what the start leaves.")
def demo(
    config_path: str | None, data_dir: Path | None, port: int | None, vens: int, duration: float
) -> None:
    """Start the VTN and a few simulated OSBs; dispatch a DR event and show the load drop.

    Without --data-dir / --config the demo runs on a new temporary store, not on ./data
    (the default store of vtn serve: the demo's open enrollment must not fill it)."""
    from vtn.demo import run_demo

    if data_dir is None and config_path is None and not _store_from_env():
        data_dir = Path(tempfile.mkdtemp(prefix="vtn-demo-"))
        click.echo(f"demo store: {data_dir} (temporary; --data-dir DIR for another)")
    config = config_from(config_path, data_dir, **{"http.port": port})
    if port is None and not _free(config.http.host, config.http.port):
        config.http.port = _free_port(config.http.host)
        click.echo(f"port 8080 is taken: the demo listens on {config.http.port}")
    asyncio.run(run_demo(config, vens, duration))


def _store_from_env() -> bool:
    return bool(os.environ.get("VTN_DATA_DIR") or os.environ.get("VTN_STORE_URL"))


def _free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
