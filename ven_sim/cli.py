"""``ven-sim``: run a fleet of simulated OSB gateways against a VTN."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live

from ven_sim.fleet import TRANSPORTS, FleetOptions, build_osbs, rss_mb, run_fleet, ven_name
from ven_sim.scenario import ScenarioError, builtin_names, load_scenario
from ven_sim.stats import Stats
from ven_sim.tls import ClientTls, TlsError, TlsOptions
from ven_sim.verdict import judge
from ven_sim.view import render
from ven_sim.xmpp_cli import xmpp_from_cli, xmpp_options
from ven_sim.xmpp_fleet import XmppOptions, run_xmpp_fleet
from vtn.server import run_fast

_ISO = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?"
                  r"(?:(\d+(?:\.\d+)?)S)?)?$")
_SHORT = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds from ISO 8601 (PT10S, PT1M30S) or short forms (10m, 3s, 1.5h, 90)."""
    t = text.strip()
    iso = _ISO.match(t.upper())
    if iso and t.upper() != "P" and any(iso.groups()):
        d, h, mi, s = (float(g) if g else 0.0 for g in iso.groups())
        return d * 86400 + h * 3600 + mi * 60 + s
    short = _SHORT.match(t.lower())
    if short:
        return float(short.group(1)) * _UNITS[short.group(2)]
    raise ValueError(f"not a duration: {text!r} (use PT10S, 10s, 5m, 1h)")


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            seconds = parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds <= 0:
            self.fail("must be positive", param, ctx)
        return seconds


_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


def parse_center(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter("use LAT,LON, e.g. 52.52,13.40") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise click.BadParameter("latitude -90..90, longitude -180..180")
    return lat, lon


@click.group()
def main() -> None:
    """Simulated OSB gateways (OpenADR 2.0b VENs with DERs) for load and conformance runs."""


@main.command()
@click.option("--vtn", default="http://127.0.0.1:8080", show_default=True,
              help="VTN base URL (/OpenADR2/Simple/2.0b is added when missing).")
@click.option("--vens", default=10, show_default=True, type=click.IntRange(1))
@click.option("--ders-per-ven", default=4, show_default=True, type=click.IntRange(1, 32))
@click.option("--poll", type=Duration(), default=None,
              help="Poll period; default: the VTN's oadrRequestedOadrPollFreq.")
@click.option("--report", type=Duration(), default=None,
              help="Longest oadrUpdateReport period; default: what the VTN asks for.")
@click.option("--duration", type=Duration(), default=None, help="Stop after (default: Ctrl-C).")
@click.option("--center", default="52.52,13.40", show_default=True,
              help="LAT,LON the households are spread around.")
@click.option("--radius-km", default=20.0, show_default=True, type=click.FloatRange(0))
@click.option("--name-prefix", default="osb-", show_default=True)
@click.option("--start-index", default=1, show_default=True, type=click.IntRange(0))
@click.option("--scenario", default="steady", show_default=True,
              help=f"Built-in ({', '.join(builtin_names())}) or a TOML file.")
@click.option("--client", type=click.Choice(["oadr", "openleadr"]), default="oadr",
              show_default=True, help="openleadr: use openleadr's OpenADRClient instead.")
@click.option("--connections", default=64, show_default=True, type=click.IntRange(1))
@click.option("--transport", type=click.Choice([*TRANSPORTS, "xmpp"]), default="pull",
              show_default=True,
              help="pull: VENs poll; push: they register for HTTP push and the VTN POSTs "
                   "to them (one listening socket, one path per VEN); xmpp: one XMPP "
                   "session per VEN (--vtn xmpp:JID, --xmpp-*).")
@click.option("--push-listen", default="127.0.0.1:0", show_default=True,
              help="HOST:PORT the push VENs listen on (port 0: any free one).")
@click.option("--push-url", default=None,
              help="Base URL the push VENs announce (default: http://HOST:PORT of "
                   "--push-listen); each VEN adds /ven/NAME.")
@click.option("--http", "http_client", type=click.Choice(["lean", "aiohttp"]), default="lean",
              show_default=True, help="HTTP client of the oadr fleet: lean (keep-alive "
                                      "HTTP/1.1, cheapest per request) or aiohttp.")
@click.option("--timeout", default=10.0, show_default=True, type=Duration())
@click.option("--ramp", type=Duration(), default=None,
              help="Spread first registrations over this time (default: vens/100 s, max 30 s).")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--validate", is_flag=True, help="XSD-validate every VTN reply.")
@click.option("--cancel-on-exit", is_flag=True,
              help="Send oadrCancelPartyRegistration for every VEN when stopping.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the summary figures to this file.")
@click.option("--quiet", is_flag=True, help="No live view (also off when not a TTY).")
@click.option("--ca", "ca_file", type=_FILE, default=None,
              help="CA bundle the VTN's certificate must chain to (https; default: the "
                   "system's trust store).")
@click.option("--cert-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Per-VEN client certificates DIR/ven-NAME.pem + DIR/ven-NAME.key (as "
                   "`vtn certs ven NAME --out DIR` writes them).")
@click.option("--issue-from", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="Create missing --cert-dir certificates, signed by the "
                                 "development CA in this directory (ca.pem + ca.key).")
@click.option("--cert", "cert_file", type=_FILE, default=None,
              help="One client certificate for every VEN (a VTN that binds fingerprints "
                   "takes them all for one VEN: use --cert-dir for fleets).")
@click.option("--key", "key_file", type=_FILE, default=None,
              help="Key of --cert (default: in the --cert file).")
@click.option("--max-refused", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Exit 5 when more than this fraction of requests got an OpenADR error.")
@click.option("--give-up", type=Duration(), default=15.0, show_default=True,
              help="Stop early when the VTN has not answered anything after this long.")
@xmpp_options
def run(vtn: str, vens: int, ders_per_ven: int, poll: float | None, report: float | None,
        duration: float | None, center: str, radius_km: float, name_prefix: str,
        start_index: int, scenario: str, client: str, connections: int, transport: str,
        push_listen: str, push_url: str | None, http_client: str,
        timeout: float, ramp: float | None, seed: int, validate: bool, cancel_on_exit: bool,
        json_path: Path | None, quiet: bool, ca_file: Path | None, cert_dir: Path | None,
        issue_from: Path | None, cert_file: Path | None, key_file: Path | None,
        max_refused: float, give_up: float,
        xmpp_server: str | None, xmpp_domain: str | None,
        xmpp_password: str, xmpp_tls: str) -> None:
    """Start the fleet; Ctrl-C or SIGTERM stops it cleanly and prints a summary.

    Over https every VEN presents a client certificate when --cert-dir or --cert is given.

    Exit status: 0 fine; 2 the VTN answered with a 5xx; 3 no VEN registered; 4 the VTN
    did not answer at all (stops after --give-up); 5 more than --max-refused of the
    requests got an OpenADR error. The summary's last line says why.
    """
    try:
        load_scenario(scenario)
    except ScenarioError as exc:
        raise click.BadParameter(str(exc), param_hint="--scenario") from None
    xmpp = (xmpp_from_cli(vtn, vens, xmpp_server, xmpp_domain, xmpp_password, xmpp_tls)
            if transport == "xmpp" else None)
    tls = TlsOptions(ca_file=ca_file, cert_file=cert_file, key_file=key_file,
                     cert_dir=cert_dir, issue_from=issue_from)
    try:
        if xmpp is None:
            tls.check(vtn)
    except TlsError as exc:
        raise click.UsageError(str(exc)) from None
    if cert_file is not None and vens > 1:
        click.echo("ven-sim: warning: all VENs present one certificate; a VTN that binds a "
                   "fingerprint per VEN accepts only the first of them (use --cert-dir)", err=True)
    options = FleetOptions(
        vtn=vtn, vens=vens, ders_per_ven=ders_per_ven, poll_s=poll, report_s=report,
        duration_s=duration, center=parse_center(center), radius_km=radius_km,
        name_prefix=name_prefix, start_index=start_index, scenario=scenario, client=client,
        connections=connections, timeout_s=timeout, ramp_s=ramp, cancel_on_exit=cancel_on_exit,
        seed=seed, validate=validate, tls=tls, http=http_client, give_up_s=give_up,
        transport=transport, push_listen=push_listen, push_url=push_url,
    )
    if client == "openleadr" and transport != "pull":
        raise click.UsageError("openleadr's client has no push: use --transport pull")
    if transport == "push" and not push_listen.rpartition(":")[2].isdigit():
        raise click.BadParameter("HOST:PORT", param_hint="--push-listen")
    if issue_from is not None:
        issuing = ClientTls(tls, [ven_name(options, i) for i in range(vens)])
        try:
            issuing.prepare()
        except TlsError as exc:
            raise click.ClickException(str(exc)) from None
        if issuing.issued:
            click.echo(f"ven-sim: issued {issuing.issued} client certificates in {cert_dir}",
                       err=True)
    console = Console(stderr=True)
    live_view = not quiet and console.is_terminal
    try:
        # the same event loop as vtn serve: cheaper sockets per request
        stats = run_fast(_run(options, console if live_view else None, xmpp))
    except TlsError as exc:
        raise click.ClickException(str(exc)) from None
    verdict = judge(stats, max_refused)
    summary = {**stats.to_dict(), "verdict": verdict.to_dict()}
    if json_path is not None:
        json_path.write_text(json.dumps(summary, indent=2) + "\n")
    if not quiet:
        Console().print(render(stats, "ven-sim summary"))
    if verdict.status:
        click.echo(f"ven-sim: FAILED (exit {verdict.status}): {verdict.reason}", err=True)
        sys.exit(verdict.status)


def stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C or SIGTERM, so runs stop cleanly (where signals exist)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    return stop


async def _run(options: FleetOptions, console: Console | None,
               xmpp: XmppOptions | None = None) -> Stats:
    stop = stop_on_signals()

    async def fleet(on_tick: Any = None) -> Stats:
        if xmpp is not None:
            return await run_xmpp_fleet(options, xmpp, stop, on_tick)
        return await run_fleet(options, stop, on_tick)

    if console is None:
        return await fleet()
    with Live(console=console, refresh_per_second=2, transient=True) as live:
        return await fleet(lambda s: live.update(render(s)))


@main.command()
@click.option("--vtn", default="http://127.0.0.1:8080", show_default=True,
              help="VTN base URL (http or https).")
@click.option("--name", required=True, help="oadrVenName of the aggregator VEN "
              "(provisioned with `vtn vens add --role aggregator --aggregator ID`).")
@click.option("--views", default=None,
              help="Comma-separated views to request (default: every view offered).")
@click.option("--granularity", type=Duration(), default=60.0, show_default=True,
              help="Granularity asked for (not below the offered minimum sampling period).")
@click.option("--report-back", type=Duration(), default=60.0, show_default=True,
              help="How often the VTN sends the report; 0: once.")
@click.option("--poll", type=Duration(), default=None,
              help="Poll period (default: the VTN's oadrRequestedOadrPollFreq).")
@click.option("--duration", type=Duration(), default=60.0, show_default=True,
              help="How long to watch.")
@click.option("--show-ders", is_flag=True, help="Print every DER, not only per-view totals.")
@click.option("--validate", is_flag=True, help="XSD-validate every VTN reply.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write what was discovered to this file.")
@click.option("--ca", "ca_file", type=_FILE, default=None, help="CA bundle of the VTN (https).")
@click.option("--cert", "cert_file", type=_FILE, default=None, help="Client certificate.")
@click.option("--key", "key_file", type=_FILE, default=None, help="Key of --cert.")
def aggregator(vtn: str, name: str, views: str | None, granularity: float, report_back: float,
               poll: float | None, duration: float, show_ders: bool, validate: bool,
               json_path: Path | None, ca_file: Path | None, cert_file: Path | None,
               key_file: Path | None) -> None:
    """Register as an aggregator VEN, request its views and print what it discovers.

    Speaks only OpenADR 2.0b (discovery over EiReport, see docs/osb-profile.md,
    "Aggregator profile"). Exits with status 1 when the VTN refused it.
    """
    tls = TlsOptions(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
    try:
        tls.check(vtn)
    except TlsError as exc:
        raise click.UsageError(str(exc)) from None
    wanted = [v.strip() for v in views.split(",") if v.strip()] if views else None
    try:
        summary = run_fast(_watch(vtn, name, wanted, granularity, report_back, poll,
                                     duration, validate, tls))
    except TlsError as exc:
        raise click.ClickException(str(exc)) from None
    if json_path is not None:
        json_path.write_text(json.dumps(summary, indent=2) + "\n")
    _print_discovery(summary, show_ders)
    if summary["errors"] or summary["ven_id"] is None:
        sys.exit(1)


async def _watch(vtn: str, name: str, wanted: list[str] | None, granularity: float,
                 report_back: float, poll: float | None, duration: float, validate: bool,
                 tls: TlsOptions) -> dict[str, Any]:
    import aiohttp

    from ven_sim.aggregator import Aggregator
    from ven_sim.link import HttpLink

    context = None
    if tls.any:
        client_tls = ClientTls(tls, [name])
        client_tls.prepare()
        context = client_tls.context(0)
    stats = Stats(vens=1, client="aggregator")
    async with aiohttp.ClientSession() as session:
        link = HttpLink(session, vtn, stats, validate, context)
        agg = Aggregator(link, name, wanted, granularity, report_back, poll)
        stop = stop_on_signals()
        task = asyncio.create_task(agg.run(duration))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        for t in (task, waiter):
            t.cancel()
        await asyncio.gather(task, waiter, return_exceptions=True)
    summary = agg.summary()
    summary["transport_errors"] = dict(stats.errors)
    if agg.ven_id is None and not agg.errors:
        summary["errors"].append(f"no registration: {dict(stats.errors)}")
    return summary


def _print_discovery(summary: dict[str, Any], show_ders: bool) -> None:
    from rich.table import Table

    console = Console()
    console.print(f"aggregator venID {summary['ven_id']}: {summary['announcements']} offers, "
                  f"{summary['updates']} status reports")
    table = Table("view", "DERs", "online", "by class", "Σ max kW", "Σ available kW")
    for name, v in summary["views"].items():
        agg = v["aggregates"]

        def kw(key: str, agg: dict[str, float] = agg) -> str:
            return f"{agg[key] / 1000:.1f}" if key in agg else "-"

        table.add_row(name, str(v["ders"]), str(v["online"]),
                      ", ".join(f"{k} {n}" for k, n in sorted(v["by_class"].items())),
                      kw("agg.max_capacity"), kw("agg.available_capacity"))
    console.print(table)
    if show_ders:
        ders = Table("view", "device_id", "OSB venID", "resourceID", "class", "online")
        for name, v in summary["views"].items():
            for device_id, d in v["der_status"].items():
                ders.add_row(name, device_id, d["ven_id"] or "-", d["resource_id"] or "-",
                             d["device_class"] or "-", str(d["online"]))
        console.print(ders)
    for error in summary["errors"]:
        console.print(f"[red]error:[/red] {error}")


@main.command()
@click.option("--vens", default=100_000, show_default=True, type=click.IntRange(1))
@click.option("--ders-per-ven", default=4, show_default=True, type=click.IntRange(1, 32))
def memory(vens: int, ders_per_ven: int) -> None:
    """Measure what one simulated VEN costs in memory (state only, no traffic)."""
    import gc
    import tracemalloc

    gc.collect()
    before = rss_mb() or 0.0
    osbs = build_osbs(FleetOptions(vens=vens, ders_per_ven=ders_per_ven))
    after = rss_mb() or 0.0
    sample = min(vens, 10_000)
    tracemalloc.start()
    kept = build_osbs(FleetOptions(vens=sample, ders_per_ven=ders_per_ven, seed=2))
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    click.echo(json.dumps({
        "vens": len(osbs),
        "ders_per_ven": ders_per_ven,
        "rss_mb_before": before,
        "rss_mb_after": after,
        "rss_bytes_per_ven": round((after - before) * 2**20 / vens),
        "traced_bytes_per_ven": round(traced / len(kept)),
    }, indent=2))


@main.command("stub-vtn")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--poll", type=Duration(), default=60.0, help="Poll period it hands out.")
@click.option("--report", type=Duration(), default=60.0, help="Report granularity it asks for.")
def stub_vtn(host: str, port: int, poll: float, report: float) -> None:
    """A canned-answer VTN, to measure what the simulator itself can push."""
    from aiohttp import web

    from ven_sim.stub import build_stub_app

    web.run_app(build_stub_app(poll, report), host=host, port=port, access_log=None,
                print=lambda *_: None)

if __name__ == "__main__":
    main()
