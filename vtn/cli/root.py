"""The ``vtn`` root group: logging setup, and every command group attached to it.

This module imports the command modules; none of them imports it (they share
:mod:`vtn.cli.common`).
"""

from __future__ import annotations

import logging
from typing import Any

import click

from vtn.cli.api import token_group
from vtn.cli.certs import certs_group
from vtn.cli.demo import demo
from vtn.cli.ders import ders
from vtn.cli.dispatches import dispatches_group
from vtn.cli.errors import as_click
from vtn.cli.event_response import response_command
from vtn.cli.events import events_group
from vtn.cli.groups import groups_group
from vtn.cli.log import log_group
from vtn.cli.ops import backup_cmd, restore_cmd, status_cmd
from vtn.cli.reports import reports_group
from vtn.cli.serve import serve
from vtn.cli.store import export_cmd, import_cmd, store_group
from vtn.cli.vens import vens
from vtn.cli.views import views_group


class VtnGroup(click.Group):
    """The root group: any exception of a subcommand is one line and exit 1
    (:mod:`vtn.cli.errors`); with ``--debug`` it propagates with its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            raise as_click(exc) from exc


@click.group(cls=VtnGroup)
@click.version_option(package_name="oadr-vtn", prog_name="vtn")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option("--debug", is_flag=True, help="Show the traceback of a failing command.")
def main(verbose: bool, debug: bool) -> None:
    """Asynchronous OpenADR 2.0b VTN with an embedded DER registry."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.WARNING)


for command in (serve, demo, vens, ders, log_group, certs_group, token_group, store_group,
                export_cmd, import_cmd, views_group, groups_group, reports_group, events_group,
                dispatches_group, status_cmd, backup_cmd, restore_cmd):
    main.add_command(command)
events_group.add_command(response_command)  # vtn events response EVENT_ID
