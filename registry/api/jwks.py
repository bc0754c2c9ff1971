"""A JWKS fetched from an OpenID Connect provider, and claims -> role mapping.

The key set is fetched once at startup and again only when a token names a key id it
does not hold, at most once per ``MIN_REFRESH_S`` (a flood of made-up key ids cannot
make us hammer the provider). The answer is bounded in size and time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

log = logging.getLogger(__name__)

MIN_REFRESH_S = 60.0
MAX_JWKS_BYTES = 256 * 1024


class JwksError(Exception):
    """The key set could not be fetched or parsed."""


class RemoteJwks:
    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.keys: jwt.PyJWKSet | None = None
        self._fetched_at = float("-inf")

    async def refresh(self) -> None:
        self._fetched_at = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(self.url, headers={"Accept": "application/json"}) as r:
                    if r.status != 200:
                        raise JwksError(f"JWKS {self.url}: HTTP {r.status}")
                    raw = await r.content.read(MAX_JWKS_BYTES + 1)
            if len(raw) > MAX_JWKS_BYTES:
                raise JwksError(f"JWKS {self.url}: over {MAX_JWKS_BYTES} bytes")
            self.keys = jwt.PyJWKSet.from_json(raw.decode())
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as exc:
            raise JwksError(f"JWKS {self.url}: {exc}") from exc

    async def start(self) -> None:
        """At startup: a provider that is down is logged and retried on the first token."""
        try:
            await self.refresh()
        except JwksError as exc:
            log.warning("%s (retried when a token arrives)", exc)

    def holds(self, kid: str | None) -> bool:
        if self.keys is None:
            return False
        return kid is None or any(k.key_id == kid for k in self.keys.keys)

    async def ensure(self, kid: str | None) -> None:
        """Refetch when ``kid`` is unknown, at most once per MIN_REFRESH_S."""
        if self.holds(kid) or time.monotonic() - self._fetched_at < MIN_REFRESH_S:
            return
        try:
            await self.refresh()
        except JwksError as exc:
            log.warning("%s", exc)


@dataclass(frozen=True, slots=True)
class ClaimMap:
    """Where a token's role, aggregator id and account id are (``[api]`` configuration)."""

    role_claim: str = "role"
    role_map: tuple[tuple[str, str], ...] = ()
    aggregator_claim: str = "aggregator_id"
    account_claim: str = "account_id"

    def roles(self, claims: dict[str, Any], known: tuple[str, ...]) -> list[str]:
        """The roles the token's role claim stands for, in the order of ``known``."""
        value = claim(claims, self.role_claim)
        values = value if isinstance(value, list) else [value]
        mapping = dict(self.role_map)
        mapped = {mapping.get(v, v if not mapping else None) for v in values
                  if isinstance(v, str)}
        return [r for r in known if r in mapped]


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.roles``); a literal key with dots wins."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
