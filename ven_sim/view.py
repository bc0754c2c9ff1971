"""Terminal rendering of :class:`Stats`: the live view and the end-of-run summary."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from ven_sim.stats import Stats


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.1f} ms"


def render(stats: Stats, title: str = "ven-sim") -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_row(
        f"[b]{title}[/b] scenario [cyan]{stats.scenario}[/cyan] client {stats.client}"
        f" transport {stats.transport}"
        + (f" (pushed {stats.pushed})" if stats.transport != "pull" else ""),
        f"elapsed {stats.elapsed_s:.0f} s",
    )
    head.add_row(
        f"VENs {stats.vens}  registered [green]{stats.vens_registered}[/green]  "
        f"online {stats.vens_online}  paused {stats.vens_paused}  stopped {stats.vens_stopped}",
        f"registrations {stats.registrations}",
    )
    head.add_row(
        f"requests {stats.requests}  {stats.rate():.1f}/s  in flight {stats.in_flight}  "
        f"lag {stats.lag_s:.2f} s",
        f"latency p50 {_ms(stats.latency.quantile(0.5))}  p99 {_ms(stats.latency.quantile(0.99))}"
        + ("" if stats.memory_mb is None else f"  RSS {stats.memory_mb:.0f} MiB"),
    )
    if stats.events_received or stats.opt_ins or stats.opt_outs:
        head.add_row(
            f"events {stats.events_received}  opt-in [green]{stats.opt_ins}[/green]  "
            f"opt-out [yellow]{stats.opt_outs}[/yellow]",
            f"opt schedules {stats.opt_schedules}",
        )
    msgs = Table(title="messages", show_edge=False)
    msgs.add_column("type")
    msgs.add_column("sent", justify="right")
    msgs.add_column("received", justify="right")
    for name in sorted(set(stats.sent) | set(stats.received)):
        msgs.add_row(name, str(stats.sent.get(name, 0)), str(stats.received.get(name, 0)))
    parts: list[Table] = [head, msgs]
    if stats.errors:
        errs = Table(title="errors", show_edge=False)
        errs.add_column("kind")
        errs.add_column("count", justify="right")
        for kind, n in sorted(stats.errors.items()):
            style = "red" if kind.startswith("http 5") else ""
            errs.add_row(f"[{style}]{kind}[/{style}]" if style else kind, str(n))
        parts.append(errs)
    if stats.bad_sent:
        bad = Table(title="bad requests: how the VTN answered", show_edge=False)
        bad.add_column("kind")
        bad.add_column("sent", justify="right")
        bad.add_column("answers")
        for kind, n in sorted(stats.bad_sent.items()):
            answers = stats.bad_answers.get(kind, {})
            bad.add_row(kind, str(n), ", ".join(f"{a}: {c}" for a, c in sorted(answers.items())))
        parts.append(bad)
    return Group(*parts)
