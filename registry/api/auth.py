"""Bearer JWT checks for the side API, token issuing, and the development key.

Keys are loaded once (at mount time), never per request. The accepted algorithm is
pinned to the configured one so a token cannot pick its own (no alg confusion).
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from registry.api.jwks import ClaimMap, RemoteJwks, claim
from registry.port import Scope
from vtn.config import Config

ROLES = ("service", "aggregator", "prosumer")
DEV_KEY_FILE = "api-dev-key"


class AuthError(Exception):
    """The request carries no valid token (401)."""


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    role: str
    aggregator_id: str | None = None
    account_id: str | None = None

    @property
    def scope(self) -> Scope:
        return Scope(self.role, self.aggregator_id, self.account_id)


def dev_key(data_dir: Path) -> str:
    """The HS256 development secret, generated once in the data directory (mode 0600)."""
    path = Path(data_dir) / DEV_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _hs_secret(config: Config) -> str:
    return config.api.jwt_secret or dev_key(config.data_dir)


class Verifier:
    """Checks signature, expiry, issuer and audience; maps claims to a :class:`Principal`."""

    def __init__(self, config: Config) -> None:
        api = config.api
        self.algorithm = api.jwt_algorithm
        self.issuer = api.jwt_issuer
        self.audience = api.jwt_audience
        self._key: Any = None
        self._jwks: jwt.PyJWKSet | None = None
        self.remote: RemoteJwks | None = None
        self.claims = ClaimMap(api.role_claim, tuple(api.role_map.items()),
                               api.aggregator_claim, api.account_claim)
        if self.algorithm == "HS256":
            self._key = _hs_secret(config)
        elif api.jwks_url:
            self.remote = RemoteJwks(api.jwks_url, api.jwks_timeout_s)
        elif api.jwks_file:
            self._jwks = jwt.PyJWKSet.from_json(Path(api.jwks_file).read_text())
        elif api.jwt_public_key_file:
            self._key = Path(api.jwt_public_key_file).read_bytes()
        else:
            raise ValueError(
                f"{self.algorithm} needs api.jwt_public_key_file, api.jwks_file or api.jwks_url"
            )

    async def start(self, _: Any = None) -> None:
        """Fetch a remote JWKS (an on_startup hook of the API application)."""
        if self.remote is not None:
            await self.remote.start()

    async def verify_request(self, token: str) -> Principal:
        """:meth:`verify`, refetching a remote JWKS first when the key id is unknown."""
        if self.remote is not None:
            await self.remote.ensure(_kid(token))
        return self.verify(token)

    def _key_for(self, token: str) -> Any:
        if self.remote is not None:
            self._jwks = self.remote.keys
            if self._jwks is None:
                raise AuthError("the JWKS of the identity provider is not available")
        if self._jwks is None:
            return self._key
        kid = _kid(token)
        keys = self._jwks.keys
        if kid is None and len(keys) == 1:
            return keys[0].key
        for k in keys:
            if k.key_id == kid:
                return k.key
        raise AuthError("unknown key id")

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key_for(token),
                algorithms=[self.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(str(exc)) from exc
        return principal_from(claims, self.claims)


def _kid(token: str) -> str | None:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise AuthError(str(exc)) from exc
    return kid if isinstance(kid, str) else None


def principal_from(claims: dict[str, Any], mapping: ClaimMap | None = None) -> Principal:
    """The principal of verified claims; with a list of roles the widest one wins
    (service, then aggregator, then prosumer), as the identity provider granted it."""
    mapping = mapping or ClaimMap()
    roles = mapping.roles(claims, ROLES)
    if not roles:
        raise AuthError("token has no valid role claim")
    role = roles[0]
    aggregator_id = claim(claims, mapping.aggregator_claim)
    account_id = claim(claims, mapping.account_claim)
    if role == "aggregator" and not isinstance(aggregator_id, str):
        raise AuthError("aggregator token needs an aggregator_id claim")
    if role == "prosumer" and not isinstance(account_id, str):
        raise AuthError("prosumer token needs an account_id claim")
    return Principal(
        subject=str(claims["sub"]),
        role=role,
        aggregator_id=aggregator_id if role == "aggregator" else None,
        account_id=account_id if role == "prosumer" else None,
    )


def issue_token(
    config: Config,
    role: str,
    *,
    subject: str | None = None,
    aggregator_id: str | None = None,
    account_id: str | None = None,
    ttl_s: int | None = None,
) -> str:
    """A token signed with the configured key (HS256 secret or the private key file)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "aggregator" and not aggregator_id:
        raise ValueError("an aggregator token needs an aggregator id")
    if role == "prosumer" and not account_id:
        raise ValueError("a prosumer token needs an account id")
    api = config.api
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject or {"aggregator": aggregator_id, "prosumer": account_id}.get(role)
        or "service",
        "role": role,
        "iss": api.jwt_issuer,
        "aud": api.jwt_audience,
        "iat": now,
        "exp": now + (ttl_s or api.token_ttl_s),
    }
    if role == "aggregator":
        claims["aggregator_id"] = aggregator_id
    if role == "prosumer":
        claims["account_id"] = account_id
    if api.jwt_algorithm == "HS256":
        return jwt.encode(claims, _hs_secret(config), algorithm="HS256")
    if not api.jwt_private_key_file:
        raise ValueError(f"{api.jwt_algorithm} tokens need api.jwt_private_key_file")
    key = Path(api.jwt_private_key_file).read_bytes()
    return jwt.encode(claims, key, algorithm=api.jwt_algorithm)
