"""What an operator sees: owner-only files, start-up warnings for risky settings, and a
log that a hostile client cannot flood with tracebacks."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import serve
from tests.oadr import register
from vtn.cli import main
from vtn.config import Config
from vtn.security import certs
from vtn.transports import errlog


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():  # type: ignore[no-untyped-def]
    old = os.umask(0o022)  # the usual umask: files 0644 unless created otherwise
    yield
    os.umask(old)


async def test_store_file_export_and_keys_are_owner_only(
    config: Config, tmp_path: Path, umask_022: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = await serve(config)
    try:
        await register(served.vtn)
    finally:
        await served.stop()
    if not config.store.url:  # the embedded SQLite store and its WAL files
        for path in config.data_dir.glob("vtn.sqlite3*"):
            assert mode(path) == 0o600, path
        assert mode(config.sqlite_path) == 0o600
    if config.store.url:
        monkeypatch.setenv("VTN_STORE_URL", config.store.url)
    out = tmp_path / "dump.jsonl"
    out.write_text("old\n")
    os.chmod(out, 0o644)  # an existing dump file is tightened too
    result = await asyncio.to_thread(  # the CLI runs its own event loop
        CliRunner().invoke, main, ["export", "--data-dir", str(config.data_dir),
                                   "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600 and "ven" in out.read_text()
    ca, server = certs.init(tmp_path / "pki", "ecdsa")
    ven = certs.issue_ven(tmp_path / "pki", "v1")
    for issued in (ca, server, ven):
        assert mode(issued.key_path) == 0o600 and mode(issued.cert_path) == 0o644


async def test_risky_settings_are_warned_about_at_start(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    config.tls.client_cert_header = "X-SSL-Client-Cert"  # and no trusted_proxies
    with caplog.at_level(logging.WARNING, logger="vtn"):
        served = await serve(config)
        await served.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("development JWT key" in w for w in warnings)
    assert any("client_cert_header" in w and "trusted_proxies" in w for w in warnings)
    caplog.clear()
    config.tls.trusted_proxies = ["127.0.0.1"]
    config.api.jwt_secret = "s3cret-s3cret-s3cret-s3cret-s3cret"
    with caplog.at_level(logging.WARNING, logger="vtn"):
        served = await serve(config)
        await served.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_malformed_requests_are_one_line_each_and_rate_limited(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve(config)
    flt = next(f for f in logging.getLogger("aiohttp.server").filters
               if isinstance(f, errlog.ClientErrorFilter))  # installed by the server
    flt._window = 0.0  # a fresh minute for this test
    port = config.http.port
    bad = [b"POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nBad Header\r\n\r\n",
           b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 300 + b"\r\n",
           b"POST /api/v1/vens HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"]
    try:
        with caplog.at_level(logging.DEBUG):
            for i in range(40):
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(bad[i % len(bad)].replace(b"Bad Header", b"Bad\nForged: line"))
                assert (await asyncio.wait_for(r.read(), 5)).startswith(b"HTTP/1.")
                w.close()
    finally:
        await served.stop()
    records = [r for r in caplog.records if r.name.startswith("aiohttp")]
    assert records, "client errors are still visible"
    assert all(r.levelno <= logging.WARNING and r.exc_info is None for r in records)
    assert all("\n" not in r.getMessage() for r in records)  # one line, no forged lines
    assert len([r for r in records if r.levelno == logging.WARNING]) <= flt.per_minute
    assert flt.suppressed > 0 and flt.total >= 40
