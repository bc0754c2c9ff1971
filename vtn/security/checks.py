"""Start-up warnings for configurations that are fine for development only, or that
silently do something else than the operator probably meant."""

from __future__ import annotations

import logging

from vtn.config import Config

log = logging.getLogger(__name__)


def startup_warnings(config: Config) -> list[str]:
    out = []
    api, tls = config.api, config.tls
    if api.enabled and api.jwt_algorithm == "HS256" and not api.jwt_secret:
        out.append(
            "side API: the generated development JWT key (data_dir/api-dev-key) is in use; "
            "set [api] jwt_secret, or RS256/ES256 keys, before exposing the API"
        )
    if tls.client_cert_header and not tls.trusted_proxies:
        out.append(
            f"[tls] client_cert_header = {tls.client_cert_header!r} but trusted_proxies is "
            "empty: the header is believed from no address, so VENs bound to a certificate "
            "are refused (463) unless they connect with TLS client certificates directly"
        )
    if tls.enabled and tls.client_ca_file and not tls.require_client_cert:
        out.append(
            "[tls] require_client_cert = false: clients without a certificate are served; "
            "VENs bound to a certificate still need theirs, unbound VENs do not"
        )
    return out


def warn_at_startup(config: Config) -> None:
    for message in startup_warnings(config):
        log.warning("%s", message)
