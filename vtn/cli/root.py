"""The ``vtn`` root group: logging setup, and every command group attached to it.

This module imports the command modules; none of them imports it (they share
:mod:`vtn.cli.common`).
"""

from __future__ import annotations

import logging

import click

from vtn.cli.api import token_group
from vtn.cli.certs import certs_group
from vtn.cli.demo import demo
from vtn.cli.ders import ders
from vtn.cli.event_response import response_command
from vtn.cli.events import events_group
from vtn.cli.groups import groups_group
from vtn.cli.log import log_group
from vtn.cli.reports import reports_group
from vtn.cli.serve import serve
from vtn.cli.store import export_cmd, import_cmd, store_group
from vtn.cli.vens import vens
from vtn.cli.views import views_group


@click.group()
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
                export_cmd, import_cmd, views_group, groups_group, reports_group, events_group):
    main.add_command(command)
events_group.add_command(response_command)  # vtn events response EVENT_ID
