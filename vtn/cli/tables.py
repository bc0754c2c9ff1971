"""What the CLI's tables share: 80-column defaults with ``--wide``, a count and a "more"
hint, enum options validated against the registry's values, VEN names accepted where a
venID is expected. Units: the registry stores W; tables show kW (as ``vtn status`` and
``vtn demo``), JSON output keeps the registry's W."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

import click

from registry.models import Ven

F = TypeVar("F", bound=Callable[..., Any])


def enum_choice(enum: type[StrEnum]) -> click.Choice:
    """Case-insensitive choice of an enum's values (`--class dhwdevice` is dhwDevice)."""
    return click.Choice([e.value for e in enum], case_sensitive=False)


def table_options(fn: F) -> F:
    fn = click.option("--wide", is_flag=True, help="All columns, full width (IDs included).")(fn)
    fn = click.option("--limit", type=click.IntRange(1), default=100, show_default=True,
                      help="Rows to show.")(fn)
    return fn


def kw(watts: float | None) -> str:
    return "-" if watts is None else f"{watts / 1000:,.2f}"


def print_table(table: Any, shown: int, more: bool, what: str, wide: bool) -> None:
    from rich.console import Console

    console = Console(width=250) if wide else Console()
    console.print(table)
    hint = " (more: raise --limit, filter, or --json)" if more else ""
    click.echo(f"{shown}{'+' if more else ''} {what}{hint}")


async def resolve_ven(store: Any, ven: str) -> Ven:
    """A VEN by venID or by name (oadrVenName)."""
    found = await store.get_ven(ven) or await store.find_ven_by_name(ven)
    if found is None:
        raise click.ClickException(f"no VEN with venID or name {ven!r}")
    return found
