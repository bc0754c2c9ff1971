"""Configuration: defaults < TOML file < ``VTN_*`` environment variables < CLI flags.

Environment names are ``VTN_<SECTION>_<KEY>`` (``VTN_STORE_URL``,
``VTN_LIVENESS_STALE_AFTER_POLLS``) or ``VTN_<KEY>`` for top-level keys (``VTN_DATA_DIR``).
``config.example.toml`` documents every key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpConfig(Section):
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = Field(1, ge=1, le=64)
    # bodies above this are refused (413) before any parsing
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    # a request body must arrive within this time (slow-body / slowloris defence)
    body_timeout_s: float = Field(30.0, gt=0)
    # a request's line and headers must arrive within this time of its first byte (of the
    # connection, for the first request); else 408 and the connection is closed
    header_timeout_s: float = Field(10.0, gt=0)
    # open connections served at once; past it a new connection gets 503 + close.
    # 0: the process's descriptor limit (RLIMIT_NOFILE) less 64 kept for the store & co
    max_connections: int = Field(0, ge=0)
    # prefix in front of /OpenADR2/Simple/2.0b/...
    path_prefix: str = ""
    # frame plain OpenADR POSTs without aiohttp's request objects (vtn/transports/lean_http);
    # false sends every request through aiohttp (slower, same answers)
    fast_path: bool = True
    # when set, GET /metrics needs "Authorization: Bearer <this>" (Prometheus:
    # authorization.credentials); empty: /metrics is open, so bind or proxy it privately
    metrics_token: str = ""


class StoreConfig(Section):
    # empty: embedded SQLite file in data_dir; "sqlite:///path" or "mongodb://..."
    url: str = ""
    # NORMAL survives a killed process; FULL also survives power loss (slower)
    sqlite_synchronous: str = Field("NORMAL", pattern="^(NORMAL|FULL|normal|full)$")
    mongo_write_concern: str = "majority"
    mongo_read_preference: str = "primary"
    mongo_timeout_ms: int = 5000
    mongo_retries: int = 3
    # auto: use $geoNear/$geoWithin and change streams where the server has them (asked
    # at start-up); basic: always the portable paths (nx-27017 gets those either way)
    mongo_capabilities: str = Field("auto", pattern="^(auto|basic)$")


class RegistrationConfig(Section):
    # let unknown VENs register themselves (with the defaults below)
    open_enrollment: bool = False
    default_aggregator_id: str | None = None
    default_account_id: str | None = None
    # oadrRequestedOadrPollFreq handed to VENs
    poll_freq_s: float = Field(10.0, gt=0)


class ReportsConfig(Section):
    # granularity asked for in oadrReportRequests (clamped to what the VEN offers)
    status_granularity_s: float = Field(60.0, gt=0)
    usage_granularity_s: float = Field(60.0, gt=0)
    # how often the VEN sends the collected intervals back
    report_back_duration_s: float = Field(60.0, gt=0)
    # issue #21: a request not acknowledged (oadrCreatedReport, or a report) within this
    # time is sent again as oadrCreateReport (same reportRequestID), with backoff
    ack_timeout_s: float = Field(60.0, gt=0)
    ack_backoff: float = Field(2.0, ge=1)
    # sends in all (the first included) before the request is overdue
    max_attempts: int = Field(4, ge=1, le=20)
    # active requests whose reports stop for this many report periods are silent
    silent_after_periods: float = Field(3.0, gt=1)
    # reportInterval of open-ended requests: dtstart = now, duration = horizon; renewed
    # (a new request, the old one cancelled) renew_before_s before the end
    horizon_s: float = Field(86400.0, ge=600)
    renew_before_s: float = Field(3600.0, gt=0)
    # the watch job: how often, and how many due requests per round trip
    check_s: float = Field(5.0, gt=0)
    check_batch: int = Field(200, ge=1, le=10000)
    # telemetry history for measured response: bucket width, flush interval, retention
    history_bucket_s: float = Field(300.0, ge=1)
    history_flush_s: float = Field(30.0, gt=0)
    history_keep_s: float = Field(14 * 86400.0, gt=0)


class LivenessConfig(Section):
    stale_after_polls: float = Field(3.0, gt=0)
    offline_after_polls: float = Field(10.0, gt=0)
    sweep_interval_s: float = Field(5.0, gt=0)
    # last-contact times are kept in memory and written at this interval
    contact_flush_interval_s: float = Field(2.0, gt=0)


class CodecConfig(Section):
    validate_inbound: bool = True


class ApiConfig(Section):
    """The HTTP side API (/api/v1) and its bearer-token (JWT) checks."""

    enabled: bool = True
    # the operator dashboard at /ui (served with the API; it only calls the API)
    ui: bool = True
    # map tiles for the dashboard, e.g. "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
    # empty: DERs over a plain background (no internet needed)
    ui_tile_url: str = ""
    ui_tile_attribution: str = ""
    # HS256 (shared secret), RS256 or ES256 (public keys)
    jwt_algorithm: str = Field("HS256", pattern="^(HS256|RS256|ES256)$")
    # HS256 secret; empty: a development key generated once in data_dir
    jwt_secret: str = ""
    # RS256/ES256: a PEM public key file or a JWKS JSON file
    jwt_public_key_file: str = ""
    jwks_file: str = ""
    # private key used by `vtn token issue` for RS256/ES256
    jwt_private_key_file: str = ""
    jwt_issuer: str = "oadr-vtn"
    jwt_audience: str = "oadr-vtn-api"
    token_ttl_s: int = Field(3600, gt=0)
    # OpenID Connect: RS256/ES256 keys from this JWKS URL, fetched at startup and again
    # (at most once a minute) when a token names an unknown key id
    jwks_url: str = ""
    jwks_timeout_s: float = Field(5.0, gt=0)
    # the claim carrying the role (dotted path into nested claims; a string or a list),
    # and claim values -> roles (service, aggregator, prosumer); empty: the value is the role
    role_claim: str = "role"
    role_map: dict[str, Literal["service", "aggregator", "prosumer"]] = Field(
        default_factory=dict
    )
    # the claims naming an aggregator token's aggregator and a prosumer token's account
    aggregator_claim: str = "aggregator_id"
    account_claim: str = "account_id"
    # /api/flexcoop/devices answers _meta.total (a second, counting query); false: as
    # Eve's OPTIMIZE_PAGINATION_FOR_SPEED, no total and no "last" link
    flexcoop_total: bool = True


class TlsConfig(Section):
    """Mutual TLS for the OpenADR endpoints (and the side API)."""

    enabled: bool = False
    cert_file: str = ""
    key_file: str = ""
    # CA bundle VEN client certificates must chain to
    client_ca_file: str = ""
    require_client_cert: bool = True
    min_version: str = Field("TLSv1.2", pattern="^TLSv1\\.[23]$")
    # OpenSSL cipher string for TLS 1.2; empty: the OpenADR 2.0b suites plus modern ones
    ciphers: str = ""
    # behind a TLS-terminating proxy: header carrying the client certificate (PEM,
    # URL-encoded), honoured only from these proxy addresses
    client_cert_header: str = ""
    trusted_proxies: list[str] = Field(default_factory=list)


class SignatureConfig(Section):
    """XML signatures for VENs that registered with oadrXmlSignature=true."""

    # ReplayProtect timestamps older or newer than this are refused
    replay_window_s: float = Field(300.0, gt=0)


class ViewsConfig(Section):
    """Discovery over OpenADR: what aggregator VENs are offered and how often."""

    # how often the scheduler delivers due oadrUpdateReports to aggregator VENs
    tick_s: float = Field(5.0, gt=0)
    # how often view membership is checked for changes (re-announced with a new
    # oadrRegisterReport); skipped while the event log has not moved
    refresh_s: float = Field(30.0, gt=0)
    # sampling rate offered for view reports: the smallest granularity accepted
    min_period_s: float = Field(10.0, gt=0)
    max_period_s: float = Field(3600.0, gt=0)
    # deliveries claimed per tick (bounded so one tick never stalls the process)
    batch: int = Field(100, ge=1, le=10000)


class GroupsConfig(Section):
    """[groups]: DER groups (docs/der-groups.md)."""

    # how often each group's roll-up is recomputed and, when it changed, logged as a
    # group.status entry (the SSE stream's rate limit per group)
    status_interval_s: float = Field(60.0, gt=0)


class EventsConfig(Section):
    """[events]: demand-response events."""

    # how often event statuses are advanced (far -> near -> active -> completed)
    status_interval_s: float = Field(5.0, gt=0)


class LoggingConfig(Section):
    """[logging]: what ``vtn serve`` writes to stderr (journald, docker logs)."""

    level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR|debug|info|warning|error)$")
    # text: one human line per record; json: one JSON object per line (log shippers)
    format: Literal["text", "json"] = "text"


class JobsConfig(Section):
    """[jobs]: scheduled jobs across VTN nodes sharing one store (vtn.leased_jobs)."""

    # false: every node runs every job (the behaviour before job leases)
    leases: bool = True
    # this node's lease holder id; empty: host-pid-random, new at every start
    node_id: str = ""
    # a lease not renewed for this long (a killed node) is taken over by another node;
    # at least 2.5 intervals of its job
    lease_ttl_s: float = Field(15.0, gt=0)
    # shards of the liveness sweep (by VEN id), spread over the live nodes
    sweep_shards: int = Field(4, ge=1, le=256)


class XmppConfig(Section):
    """[xmpp]: the VTN as an XMPP client of an XMPP server (docs/deployment-xmpp.md)."""

    # off: no XMPP connection (VENs use HTTP only)
    enabled: bool = False
    # the VTN's full JID; VENs address OpenADR payloads to exactly this JID (resource
    # included), so exactly one VTN process may hold it (see the deployment doc)
    jid: str = "vtn@localhost/openadr"
    password: str = ""
    # where the XMPP server listens; empty host: the JID's domain (DNS SRV, then A)
    server_host: str = ""
    server_port: int = Field(5222, ge=1, le=65535)
    # "starttls" (required, the default), "direct" (TLS from the first byte, port 5223)
    # or "none" (plain TCP: only for a server on loopback)
    tls: Literal["starttls", "direct", "none"] = "starttls"
    # CA bundle the server certificate is checked against (empty: the system's)
    ca_file: str = ""
    # a VEN must acknowledge a delivered payload (IQ result) within this time
    ack_timeout_s: float = Field(30.0, gt=0)
    # wait between reconnection attempts grows to this cap after the server went away
    reconnect_max_s: float = Field(5.0, gt=0)
    # a VEN whose deliveries fail (offline, no ack) is retried with a back-off up to this
    retry_max_s: float = Field(30.0, gt=0)
    # VENs delivered to at once by this process (one payload in flight per VEN)
    concurrency: int = Field(512, ge=1)


class PushConfig(Section):
    """[push]: delivery to VENs that registered for HTTP push (vtn.transports.push)."""

    # run the push deliverer in this process (every process may: a per-VEN lease in the
    # store makes one of them push a given VEN at a time)
    enabled: bool = True
    # transport addresses accepted at registration (and checked again at every connect)
    allowed_schemes: list[Literal["http", "https"]] = Field(default_factory=lambda: ["https"])
    # host name patterns (fnmatch, e.g. "*.ven.example.com"); empty: any host name
    allowed_hosts: list[str] = Field(default_factory=list)
    # ports accepted; empty: any
    allowed_ports: list[int] = Field(default_factory=list)
    # private, loopback, link-local and other non-public addresses are refused unless
    # they fall in one of these networks (e.g. "10.20.0.0/16"); public ones are allowed
    # while allow_public is true
    allowed_cidrs: list[str] = Field(default_factory=list)
    allow_public: bool = True
    connect_timeout_s: float = Field(5.0, gt=0)
    timeout_s: float = Field(30.0, gt=0)  # whole request, reply included
    max_reply_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    # retry schedule after a failed delivery: initial * 2^(n-1), capped, +- jitter
    backoff_initial_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(300.0, gt=0)
    backoff_jitter: float = Field(0.3, ge=0, le=1)
    # the per-VEN lease: how long a holder may go without renewing it
    lease_s: float = Field(30.0, gt=0)
    # how often the store is asked which push VENs have something queued
    scan_interval_s: float = Field(0.25, gt=0)
    scan_batch: int = Field(500, ge=1, le=100000)
    concurrency: int = Field(256, ge=1, le=100000)  # VENs pushed at once by this process
    # mutual TLS for https targets: our client certificate (default: [tls] cert/key) and
    # the CA that signs VEN server certificates (default: [tls] client_ca_file, else the
    # system store)
    client_cert_file: str = ""
    client_key_file: str = ""
    ca_file: str = ""
    # source address of push connections (multi-homed hosts, firewall rules); empty: any
    local_address: str = ""


class Config(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VTN_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
    )

    vtn_id: str = "oadr-vtn"
    data_dir: Path = Path("data")
    http: HttpConfig = HttpConfig()
    store: StoreConfig = StoreConfig()
    registration: RegistrationConfig = RegistrationConfig()
    reports: ReportsConfig = ReportsConfig()
    liveness: LivenessConfig = LivenessConfig()
    codec: CodecConfig = CodecConfig()
    api: ApiConfig = ApiConfig()
    tls: TlsConfig = TlsConfig()
    signatures: SignatureConfig = SignatureConfig()
    views: ViewsConfig = ViewsConfig()
    events: EventsConfig = EventsConfig()
    logging: LoggingConfig = LoggingConfig()
    jobs: JobsConfig = JobsConfig()
    groups: GroupsConfig = GroupsConfig()
    xmpp: XmppConfig = XmppConfig()
    push: PushConfig = PushConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @property
    def sqlite_path(self) -> Path:
        if self.store.url.startswith("sqlite:///"):  # sqlite:///absolute/path.sqlite3
            return Path(self.store.url.removeprefix("sqlite://"))
        return self.data_dir / "vtn.sqlite3"


_toml_data: dict[str, Any] = {}


class _TomlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return _toml_data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_toml_data)


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Read the TOML file (if any), apply env vars, then explicit overrides.

    Overrides use dotted keys for sections: ``{"http.port": 8081}``.
    """
    global _toml_data
    _toml_data = tomllib.loads(Path(path).read_text()) if path else {}
    try:
        cfg = Config()
        if not any(v is not None for v in overrides.values()):
            return cfg
        data = cfg.model_dump()
        for key, value in overrides.items():
            if value is None:
                continue
            section, _, name = key.partition(".")
            if name:
                data[section][name] = value
            else:
                data[key] = value
        return Config(**data)
    finally:
        _toml_data = {}
