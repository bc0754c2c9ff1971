"""OpenADR 2.0b HTTP push: the VTN POSTs each queued message to the VEN's URL.

A :class:`vtn.delivery.Deliverer` for targets of transport ``simpleHttp`` (VENs that
registered with oadrHttpPullModel false). One POST per message, body
``application/xml``; the VEN's reply in the response body (``oadrCreatedEvent``,
``oadrResponse``, ...) or an empty 2xx acknowledges it. Anything else - connection
refused, TLS failure, timeout, a status other than 2xx, a redirect (not followed), a
reply over ``[push] max_reply_bytes`` - is a failed delivery, retried by the drainer.

Where it may connect: the URL was checked at registration (``vtn.services.targets``);
the same policy is applied again here, to the URL and to every address a host name
resolves to (``PolicyResolver``), so a host that later resolves to an internal address
is not reached. https targets get mutual TLS: the VTN's client certificate ([push]
client_cert_file, default [tls] cert_file) and verification of the VEN's server
certificate against [push] ca_file (default [tls] client_ca_file, else the system store).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from registry.models import Ven
from registry.port import DeliveryTarget
from registry.port.delivery import PUSH
from vtn.config import Config, PushConfig
from vtn.delivery import DeliveryFailed, DeliveryPolicy, Sent
from vtn.security import tls
from vtn.services.base import OadrError
from vtn.services.targets import address_allowed, check_push_address

HEADERS = {"Content-Type": "application/xml"}


def policy_of(cfg: PushConfig) -> DeliveryPolicy:
    return DeliveryPolicy(
        lease_s=cfg.lease_s, backoff_initial_s=cfg.backoff_initial_s,
        backoff_max_s=cfg.backoff_max_s, backoff_jitter=cfg.backoff_jitter,
        scan_interval_s=cfg.scan_interval_s, scan_batch=cfg.scan_batch,
        concurrency=cfg.concurrency,
    )


class PolicyResolver(AbstractResolver):
    """Resolves as usual, then drops every address [push] does not allow."""

    def __init__(self, cfg: PushConfig) -> None:
        self.cfg = cfg
        self.inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        allowed = [r for r in found if address_allowed(ipaddress.ip_address(r["host"]),
                                                       self.cfg)]
        if not allowed:
            raise OSError(f"{host} resolves only to addresses [push] does not allow")
        return allowed

    async def close(self) -> None:
        await self.inner.close()


def client_context(config: Config) -> ssl.SSLContext:
    """TLS for https targets: verify the VEN's server certificate; present ours."""
    push, server = config.push, config.tls
    ctx = ssl.create_default_context(cafile=push.ca_file or server.client_ca_file or None)
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if server.min_version == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
    )
    ctx.set_ciphers(server.ciphers or f"{tls.DEFAULT_CIPHERS}:@SECLEVEL=1")
    cert, key = push.client_cert_file or server.cert_file, push.client_key_file or server.key_file
    if cert and key:
        ctx.load_cert_chain(cert, key)
    return ctx


class HttpPushDeliverer:
    transport = PUSH

    def __init__(self, config: Config) -> None:
        self.config = config
        self.cfg = config.push
        self._session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=PolicyResolver(self.cfg), limit=self.cfg.concurrency,
                limit_per_host=0, ttl_dns_cache=60,
                local_addr=(self.cfg.local_address, 0) if self.cfg.local_address else None)
            timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_s,
                                            sock_connect=self.cfg.connect_timeout_s)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout,
                                                  skip_auto_headers=("User-Agent",))
        return self._session

    def ssl_for(self, url: str) -> Any:
        if not url.lower().startswith("https:"):
            return True  # aiohttp's default (unused for http)
        if self._ssl is None:
            self._ssl = client_context(self.config)
        return self._ssl

    async def send(self, target: DeliveryTarget, ven: Ven, body: bytes) -> Sent:
        url = target.address
        try:  # the policy may have been tightened since the VEN registered
            check_push_address(url, self.cfg)
        except OadrError as exc:
            raise DeliveryFailed(exc.description) from None
        try:
            async with self.session.post(url, data=body, headers=HEADERS,
                                         allow_redirects=False,
                                         ssl=self.ssl_for(url)) as resp:
                peer = _peer_fingerprint(resp)
                if resp.status // 100 != 2:
                    raise DeliveryFailed(f"HTTP {resp.status} from {url}")
                reply = await _read_capped(resp, self.cfg.max_reply_bytes)
        except DeliveryFailed:
            raise
        except TimeoutError:
            raise DeliveryFailed(f"no answer from {url} within {self.cfg.timeout_s} s") from None
        except (aiohttp.ClientError, OSError, ssl.SSLError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
        return Sent(reply=reply, peer_fingerprint=peer)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _peer_fingerprint(resp: aiohttp.ClientResponse) -> str | None:
    conn = resp.connection
    transport = conn.transport if conn is not None else None
    der = tls.peer_der(transport.get_extra_info("ssl_object")) if transport else None
    return tls.fingerprint_of(der) if der else None


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    if resp.content_length is not None and resp.content_length > limit:
        raise DeliveryFailed(f"reply of {resp.content_length} bytes is over {limit}")
    data = bytearray()
    async for chunk in resp.content.iter_chunked(65536):
        data += chunk
        if len(data) > limit:
            raise DeliveryFailed(f"reply is over {limit} bytes")
    return bytes(data)
