"""HTTP link to the VTN: one shared aiohttp session, counting everything in Stats."""

from __future__ import annotations

import copy
import ssl
import time
from urllib.parse import urlsplit

import aiohttp

from ven_sim.lean import LeanClient
from ven_sim.stats import Stats
from vtn.codec import CodecError, decode, encode
from vtn.codec import messages as m

OADR_PATH = "/OpenADR2/Simple/2.0b"
HEADERS = {"Content-Type": "application/xml"}


def service_base(url: str) -> str:
    """The base URL of the OpenADR services (adds /OpenADR2/Simple/2.0b when missing)."""
    url = url.rstrip("/")
    return url if url.endswith(OADR_PATH) else url + OADR_PATH


class HttpLink:
    """Posts encoded messages; returns decoded replies or None after a counted error."""

    def __init__(self, session: aiohttp.ClientSession | None, vtn_url: str, stats: Stats,
                 validate: bool = False, ssl_context: ssl.SSLContext | None = None,
                 lean: LeanClient | None = None) -> None:
        self.session = session
        self.lean = lean  # when set, requests go through it instead of the aiohttp session
        self.base = service_base(vtn_url)
        self.path = urlsplit(self.base).path
        self.stats = stats
        self.validate = validate
        # True: aiohttp's default (system trust, no client certificate)
        self.ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True

    def with_context(self, ssl_context: ssl.SSLContext) -> HttpLink:
        """The same session and stats, presenting another client certificate (aiohttp
        pools connections per context, so they are never shared across certificates)."""
        link = copy.copy(self)
        link.ssl = ssl_context
        return link

    async def _post(self, service: str, body: bytes) -> tuple[int, bytes] | str:
        """(HTTP status, body), or the error kind when no answer came."""
        stats = self.stats
        stats.in_flight += 1
        start = time.perf_counter()
        try:
            if self.lean is not None:
                ctx = self.ssl if isinstance(self.ssl, ssl.SSLContext) else None
                status, data = await self.lean.post(f"{self.path}/{service}", body, ctx)
            else:
                assert self.session is not None
                async with self.session.post(f"{self.base}/{service}", data=body,
                                             headers=HEADERS, ssl=self.ssl) as resp:
                    data = await resp.read()
                    status = resp.status
        except TimeoutError:
            return "timeout"
        except (aiohttp.ClientSSLError, ssl.SSLError):
            return "tls"
        except (aiohttp.ClientConnectionError, OSError) as exc:
            # a TLS alert that arrives with the first read (TLS 1.3 refuses a client
            # certificate after the handshake; often only a reset gets through, though)
            return "tls" if isinstance(exc.__cause__ or exc.__context__, ssl.SSLError) else (
                "connection")
        except aiohttp.ClientError as exc:
            return f"client {type(exc).__name__}"
        finally:
            stats.in_flight -= 1
        stats.latency.add(time.perf_counter() - start)
        return status, data

    async def send(self, service: str, msg: m.Message) -> m.Message | None:
        stats = self.stats
        stats.sent[m.ELEMENT_NAMES[type(msg)]] += 1
        answer = await self._post(service, encode(msg))
        if isinstance(answer, str):
            stats.errors[answer] += 1
            return None
        status, data = answer
        if status != 200:
            stats.errors[f"http {status}"] += 1
            return None
        try:
            reply = decode(data, validate=self.validate)
        except CodecError:
            stats.errors["decode"] += 1
            return None
        stats.received[m.ELEMENT_NAMES[type(reply)]] += 1
        resp = getattr(reply, "response", None)
        if isinstance(resp, m.EiResponse) and resp.code != m.OK:
            stats.errors[f"oadr {resp.code}"] += 1
        return reply

    async def send_bad(self, kind: str, service: str, body: bytes) -> None:
        stats = self.stats
        stats.bad_sent[kind] += 1
        answer = await self._post(service, body)
        if isinstance(answer, str):
            result = answer
        elif answer[0] != 200:
            result = f"http {answer[0]}"
        else:
            try:
                reply = decode(answer[1], validate=self.validate)
            except CodecError:
                result = "decode"
            else:
                resp = getattr(reply, "response", None)
                code = resp.code if isinstance(resp, m.EiResponse) else m.OK
                result = f"oadr {code}"
        stats.bad_answer(kind, result)
        if result != f"oadr {m.OK}":
            stats.errors[result] += 1

