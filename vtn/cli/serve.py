"""``vtn serve``: run the VTN on the configured store."""

from __future__ import annotations

from pathlib import Path

import click

from vtn.cli.common import config_from, store_options


@click.command("serve")
@store_options
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default 8080).")
@click.option("--workers", type=int, default=None, help="Processes sharing the port and store.")
def serve(
    config_path: str | None, data_dir: Path | None, host: str | None, port: int | None,
    workers: int | None,
) -> None:
    """Run the VTN (OpenADR 2.0b over HTTP) on the configured store."""
    import logging

    from vtn.logs import setup_logging
    from vtn.server import serve_forever

    config = config_from(
        config_path, data_dir, **{"http.host": host, "http.port": port, "http.workers": workers}
    )
    setup_logging(config.logging, verbose=logging.getLogger().level == logging.DEBUG)
    serve_forever(config)
