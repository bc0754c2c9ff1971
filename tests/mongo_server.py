"""A MongoDB for the tests: nx-27017 on a free loopback port, or TEST_MONGO_URI.

nx-27017 is a MongoDB wire-protocol server over SQLite (a standalone: no replica set, no
transactions). With ``TEST_MONGO_URI`` set, a real MongoDB is used instead; each test
session then works in databases prefixed with a unique name, dropped at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pymongo import MongoClient
from pymongo.errors import PyMongoError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nx_command() -> list[str]:
    script = Path(sys.executable).parent / "nx-27017"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "nx_27017"]


def _ping(url: str, timeout_ms: int = 500) -> bool:
    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


class MongoServer:
    """Start (or borrow) a MongoDB; hand out database URLs; clean up afterwards."""

    def __init__(self) -> None:
        self.external = os.environ.get("TEST_MONGO_URI") or None
        self.prefix = f"t{uuid.uuid4().hex[:8]}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmp: Path | None = None
        self.base = ""
        self.used: list[str] = []

    def start(self, wait_s: float = 20.0) -> MongoServer:
        if self.external:
            self.base = self.external
            if not _ping(self.base, 5000):
                raise RuntimeError(f"TEST_MONGO_URI {self.base} does not answer")
            return self
        self.tmp = Path(tempfile.mkdtemp(prefix="nx27017-"))
        port = _free_port()
        cmd = [*_nx_command(), "--host", "127.0.0.1", "-p", str(port),
               "--data-dir", str(self.tmp / "data"), "--log-file", str(self.tmp / "nx.log"),
               "--pid-file", str(self.tmp / "nx.pid")]
        (self.tmp / "data").mkdir()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"mongodb://127.0.0.1:{port}/"
        deadline = time.monotonic() + wait_s
        while not _ping(self.base):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nx-27017 did not start: {' '.join(cmd)}")
            time.sleep(0.1)
        return self

    def url(self, name: str | None = None) -> str:
        """URL of a fresh database of this session (unique name unless given)."""
        db = f"{self.prefix}_{name or uuid.uuid4().hex[:12]}"
        self.used.append(db)
        parts = urlsplit(self.base)
        return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))

    def stop(self) -> None:
        if self.external:
            self._drop_databases()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def _drop_databases(self) -> None:
        client: MongoClient[dict[str, object]] = MongoClient(self.base)
        try:
            for name in client.list_database_names():
                if name.startswith(self.prefix):
                    client.drop_database(name)
        finally:
            client.close()


def nx_available() -> bool:
    """Whether tests can run a MongoDB here (nx-27017 installed or TEST_MONGO_URI set)."""
    if os.environ.get("TEST_MONGO_URI"):
        return True
    try:
        import nx_27017  # noqa: F401
    except ImportError:
        return False
    return True
