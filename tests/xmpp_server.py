"""A real XMPP server for the tests: Debian's Prosody with a throw-away config.

Everything lives in one temporary directory (config, data, pid file, log); c2s listens on
a free loopback port only (no s2s, no HTTP), and accounts are pre-seeded as
``mod_auth_internal_plain`` files, which is what makes a 1k-VEN bench cheap to set up
(``prosodyctl register`` costs a Lua start per account). No certificate: the clients
authenticate with SCRAM-SHA-1 over plain TCP on loopback (tests and bench only; see
docs/deployment-xmpp.md for production).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DOMAIN = "localhost"

_CONFIG = """\
pidfile = "{dir}/prosody.pid"
run_as_root = true  -- CI and this machine run tests as root; loopback only
certificates = "{dir}/certs"
data_path = "{dir}/data"
log = {{ {{ levels = {{ min = "{log_level}" }}, to = "file", filename = "{dir}/prosody.log" }} }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_interfaces = {{ "127.0.0.1" }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
legacy_ssl_ports = {{ }}
c2s_direct_tls_ports = {{ }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
modules_enabled = {{ "roster", "saslauth", "disco", "ping" }}
modules_disabled = {{ "s2s", "offline", "tls" }}
c2s_stanza_size_limit = {stanza_limit}
limits = {{ }}
VirtualHost "{domain}"
"""


def prosody_path() -> str | None:
    return shutil.which("prosody")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _encode_node(node: str) -> str:
    """Prosody's datamanager file-name encoding (non-alphanumerics as %XX)."""
    return "".join(c if c.isalnum() else f"%{ord(c):02x}" for c in node)


class ProsodyServer:
    """Start Prosody in the foreground on a free port; add accounts; restart; stop."""

    def __init__(self, stanza_limit: int = 10 * 1024 * 1024, log_level: str = "warn") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="prosody-"))
        self.port = _free_port()
        self.domain = DOMAIN
        self.proc: subprocess.Popen[bytes] | None = None
        (self.dir / "data").mkdir()
        (self.dir / "certs").mkdir()
        (self.dir / "prosody.cfg.lua").write_text(_CONFIG.format(
            dir=self.dir, port=self.port, domain=DOMAIN, stanza_limit=stanza_limit,
            log_level=log_level,
        ))

    @property
    def config_path(self) -> Path:
        return self.dir / "prosody.cfg.lua"

    def add_account(self, user: str, password: str) -> str:
        """Pre-seed an account (read by Prosody when the user logs in); returns the JID."""
        accounts = self.dir / "data" / _encode_node(self.domain) / "accounts"
        accounts.mkdir(parents=True, exist_ok=True)
        (accounts / f"{_encode_node(user)}.dat").write_text(
            f"return {{\n\t[\"password\"] = {_lua_string(password)};\n}};\n"
        )
        return f"{user}@{self.domain}"

    def start(self, wait_s: float = 15.0) -> ProsodyServer:
        exe = prosody_path()
        if exe is None:
            raise RuntimeError("prosody is not installed")
        self.proc = subprocess.Popen(
            [exe, "-F", "--config", str(self.config_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.dir,
        )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prosody exited: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"prosody did not listen on {self.port}: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        """Stop (every client session drops), stay down ``down_s``, start on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n: int = 2000) -> str:
        path = self.dir / "prosody.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        if self.proc is not None and self.proc.stderr is not None and self.proc.poll() is not None:
            text += self.proc.stderr.read().decode(errors="replace")
        return text[-n:]
