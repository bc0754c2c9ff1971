"""``vtn token``: bearer tokens for the side API (/api/v1), signed with the configured key.

With HS256 and no ``api.jwt_secret`` the development key in the data directory is used
(created on first use), the same one ``vtn serve`` verifies with.
"""

from __future__ import annotations

from pathlib import Path

import click

from vtn.cli.common import config_from, store_options


@click.group("token")
def token_group() -> None:
    """Issue bearer tokens for the discovery and management API."""


@token_group.command("issue")
@store_options
@click.option(
    "--role", type=click.Choice(["service", "aggregator", "prosumer"]), required=True,
    help="service sees everything; aggregator and prosumer only their DERs.",
)
@click.option("--aggregator", "aggregator_id", default=None, help="aggregator_id claim.")
@click.option("--account", "account_id", default=None, help="account_id claim (prosumer).")
@click.option("--subject", default=None, help="sub claim (logged as actor of changes).")
@click.option("--ttl", type=int, default=None, help="Lifetime in seconds (api.token_ttl_s).")
def token_issue(
    config_path: str | None, data_dir: Path | None, role: str, aggregator_id: str | None,
    account_id: str | None, subject: str | None, ttl: int | None,
) -> None:
    """Print a signed token."""
    from registry.api.auth import issue_token

    if ttl is not None and ttl <= 0:
        raise click.BadParameter("must be positive", param_hint="--ttl")
    config = config_from(config_path, data_dir)
    try:
        token = issue_token(
            config, role, subject=subject, aggregator_id=aggregator_id,
            account_id=account_id, ttl_s=ttl,
        )
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(token)
