"""The ``ven-sim run`` options of ``--transport xmpp`` and their checks (one line on the
CLI for a bad value, never a traceback)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from slixmpp import JID
from slixmpp.jid import InvalidJID

from ven_sim.xmpp_fleet import MAX_VENS, XmppOptions

_OPTIONS = [
    click.option("--xmpp-server", default=None, metavar="HOST:PORT",
                 help="XMPP server of --transport xmpp (default: DNS of --xmpp-domain)."),
    click.option("--xmpp-domain", default=None,
                 help="Domain of the VENs' accounts (default: the VTN JID's)."),
    click.option("--xmpp-password", default="", envvar="VEN_SIM_XMPP_PASSWORD",
                 help="Password of every VEN account (env VEN_SIM_XMPP_PASSWORD)."),
    click.option("--xmpp-tls", type=click.Choice(["starttls", "direct", "none"]),
                 default="starttls", show_default=True,
                 help="TLS to the XMPP server ('none': loopback only)."),
]


def xmpp_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_OPTIONS):
        f = option(f)
    return f


def parse_server(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter("use HOST:PORT, e.g. 127.0.0.1:5222",
                                 param_hint="--xmpp-server")
    return host, int(port)


def xmpp_from_cli(vtn: str, vens: int, server: str | None, domain: str | None,
                  password: str, tls: str) -> XmppOptions:
    """``--vtn xmpp:JID`` and the --xmpp-* options, checked."""
    if not vtn.startswith("xmpp:"):
        raise click.BadParameter("with --transport xmpp, give the VTN's full JID as "
                                 "xmpp:vtn@example.org/openadr", param_hint="--vtn")
    try:
        jid = JID(vtn.removeprefix("xmpp:"))
    except InvalidJID as exc:
        raise click.BadParameter(f"not a JID: {exc}", param_hint="--vtn") from None
    if not jid.user or not jid.resource:
        raise click.BadParameter("the VTN's JID must be full: user@domain/resource",
                                 param_hint="--vtn")
    if vens > MAX_VENS:
        raise click.BadParameter(f"at most {MAX_VENS} XMPP VENs per process (one session "
                                 "each); start more processes with --start-index",
                                 param_hint="--vens")
    return XmppOptions(vtn_jid=str(jid), server=parse_server(server) if server else None,
                       domain=domain or jid.domain, password=password, tls=tls)
