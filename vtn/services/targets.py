"""Which transport addresses the VTN agrees to send to (HTTP push URLs, XMPP JIDs).

A push VEN names the URL the VTN will POST to. Unchecked, that would let anyone who can
register make the VTN send requests into its own network (SSRF). ``[push]`` says what
is allowed: schemes, host name patterns, ports, and which non-public networks may be
reached (``allowed_cidrs``; loopback, private, link-local, multicast and reserved
addresses are refused otherwise). The URL is checked at registration; the addresses a
host name resolves to are checked again at every connect (``address_allowed``), so a
name that later resolves somewhere internal (DNS rebinding) is refused too.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from urllib.parse import urlsplit

from vtn.codec import messages as m
from vtn.config import PushConfig
from vtn.services.base import OadrError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_HOST = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                   r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# localpart@domain/resource (RFC 7622), checked for shape only: no spaces, one @ at most
_JID = re.compile(r"^(?:[^@/\s\"&'<>:]{1,1023}@)?[^@/\s]{1,1023}(?:/\S{1,1023})?$")


def _refuse(detail: str) -> OadrError:
    return OadrError(m.NOT_ALLOWED, f"oadrTransportAddress refused: {detail}")


def address_allowed(ip: IpAddress, cfg: PushConfig) -> bool:
    """May the VTN connect to this address? Non-public ones only inside allowed_cidrs."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for cidr in cfg.allowed_cidrs:
        if ip in ipaddress.ip_network(cidr, strict=False):
            return True
    return cfg.allow_public and ip.is_global and not ip.is_multicast


def check_push_address(address: str | None, cfg: PushConfig) -> str:
    """The URL a push VEN registered, if the policy allows it; else 451 saying why."""
    if not address:
        raise _refuse("a push VEN (oadrHttpPullModel false) must give its URL")
    if len(address) > 2048:
        raise _refuse("longer than 2048 characters")
    try:
        url = urlsplit(address)
        port = url.port
    except ValueError as exc:
        raise _refuse(f"not a URL ({exc})") from None
    scheme = url.scheme.lower()
    if scheme not in cfg.allowed_schemes:
        raise _refuse(f"scheme {scheme or '(none)'!r} not allowed (allowed: "
                      f"{', '.join(cfg.allowed_schemes)})")
    if url.username is not None or url.password is not None:
        raise _refuse("credentials in the URL are not accepted")
    if url.fragment:
        raise _refuse("a fragment is not accepted")
    host = (url.hostname or "").rstrip(".")
    if not host:
        raise _refuse("no host")
    port = port or (443 if scheme == "https" else 80)
    if cfg.allowed_ports and port not in cfg.allowed_ports:
        raise _refuse(f"port {port} not allowed")
    try:
        ip: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if not address_allowed(ip, cfg):
            raise _refuse(f"address {ip} is not a public address and not in [push] "
                          "allowed_cidrs")
    else:
        if not _HOST.match(host):
            raise _refuse(f"host {host!r} is not a valid host name")
        if cfg.allowed_hosts and not any(fnmatch.fnmatch(host.lower(), p.lower())
                                         for p in cfg.allowed_hosts):
            raise _refuse(f"host {host!r} not in [push] allowed_hosts")
    return address


def check_jid(address: str | None) -> str:
    """An XMPP VEN's JID (its oadrTransportAddress): shape only, XMPP checks the rest."""
    if not address:
        raise _refuse("an XMPP VEN must give its JID")
    if not _JID.match(address):
        raise _refuse(f"{address[:80]!r} is not a JID")
    return address
