"""``vtn demo``: the VTN and a few simulated OSBs (the demo itself is :mod:`vtn.demo`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from vtn.cli.common import config_from, store_options


@click.command("demo")
@store_options
@click.option("--port", type=int, default=None, help="Listen port (default 8080).")
@click.option("--vens", type=int, default=3, show_default=True, help="Simulated OSBs.")
@click.option("--duration", type=float, default=90.0, show_default=True,
              help="Seconds the demo runs; its DR event fills what the start leaves.")
def demo(
    config_path: str | None, data_dir: Path | None, port: int | None, vens: int, duration: float
) -> None:
    """Start the VTN and a few simulated OSBs; dispatch a DR event and show the load drop."""
    from vtn.demo import run_demo

    config = config_from(config_path, data_dir, **{"http.port": port})
    asyncio.run(run_demo(config, vens, duration))
