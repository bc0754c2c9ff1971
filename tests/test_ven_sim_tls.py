"""ven-sim over mutual TLS against our VTN on loopback: per-VEN client certificates, the
fingerprints the VTN binds, and refusal without a certificate."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry.port import SERVICE, DerQuery
from tests.conftest import Served
from tests.security_support import Pki, make_pki, serve_tls, tls_config
from tests.test_ven_sim import eventually, fleet, options
from ven_sim.cli import main
from ven_sim.fleet import build_osbs, run_fleet
from ven_sim.tls import ClientTls, TlsOptions, ven_cert_paths
from vtn.config import Config
from vtn.security import certs


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    # osb-00001 gets its certificate from `vtn certs ven`; ven-sim issues the others
    return make_pki(tmp_path / "certs", ("osb-00001",))


@pytest.fixture
async def served(config: Config, pki: Pki) -> AsyncIterator[Served]:
    config.registration.open_enrollment = True
    config.registration.poll_freq_s = 1
    config.reports.usage_granularity_s = 1
    config.reports.status_granularity_s = 1
    config.reports.report_back_duration_s = 1
    assert config.tls.require_client_cert  # the default
    s = await serve_tls(tls_config(config, pki))
    yield s
    await s.stop()


def fingerprint(path: Path) -> str:
    return certs.fingerprint_pem(path.read_bytes())


async def test_fleet_presents_one_certificate_per_ven_and_the_vtn_binds_it(
    served: Served, pki: Pki
) -> None:
    tls = TlsOptions(ca_file=pki.ca.cert_path, cert_dir=pki.dir, issue_from=pki.dir)
    opts = options(served, vens=3, ders_per_ven=2, tls=tls)
    names = [o.name for o in build_osbs(opts)]
    store = served.vtn.store

    async def all_reported() -> bool:
        ders = await store.list_ders(DerQuery(), SERVICE)
        return len(ders) == 6 and all(d.last_values for d in ders)

    async with fleet(opts) as (latest, _):
        await eventually(all_reported, timeout=15)
    stats = latest[0]
    assert stats.errors == {} and stats.vens_registered == 3

    vens = {v.ven_name: v for v in await store.list_vens(SERVICE)}
    assert sorted(vens) == names == ["osb-00001", "osb-00002", "osb-00003"]
    presented = {n: fingerprint(ven_cert_paths(pki.dir, n).cert) for n in names}
    assert {n: v.fingerprint for n, v in vens.items()} == presented
    assert len(set(presented.values())) == 3
    # the pre-existing certificate was used as it was, the missing ones were issued
    assert presented["osb-00001"] == pki.vens["osb-00001"].fingerprint
    assert ven_cert_paths(pki.dir, "osb-00002").key.stat().st_mode & 0o077 == 0  # type: ignore[union-attr]
    # no 463: every message of a VEN came with its own certificate
    mismatches = [e for e in await store.read_log(limit=1000)
                  if e.kind == "security.fingerprint_mismatch"]
    assert mismatches == []


async def test_fleet_without_client_certificates_is_refused(served: Served, pki: Pki) -> None:
    no_cert = options(served, vens=3, ders_per_ven=2, duration_s=1.0,
                      tls=TlsOptions(ca_file=pki.ca.cert_path))
    # and the other way round: certificates, but the VTN's is not checked against our CA
    untrusted = options(served, vens=3, ders_per_ven=2, duration_s=1.0, name_prefix="u-",
                        tls=TlsOptions(cert_dir=pki.dir, issue_from=pki.dir))
    stats, other = await asyncio.wait_for(
        asyncio.gather(run_fleet(no_cert), run_fleet(untrusted)), 15)
    assert stats.vens_registered == 0 and stats.registrations == 0
    # TLS 1.3: the VTN refuses after the client's half of the handshake and closes the
    # connection with the request unread, so the client sees a reset, not the alert
    assert set(stats.errors) <= {"tls", "connection"}
    assert sum(stats.errors.values()) >= 3
    assert other.registrations == 0 and set(other.errors) == {"tls"}
    assert await served.vtn.store.list_vens(SERVICE) == []


async def test_cli_run_over_https_issues_certificates_and_registers(
    served: Served, pki: Pki, tmp_path: Path
) -> None:
    out = tmp_path / "out.json"
    sim_certs = tmp_path / "sim-certs"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ven_sim", "run", "--vtn", served.url.split("/OpenADR2")[0],
        "--vens", "2", "--ders-per-ven", "1", "--duration", "2s", "--poll", "PT1S",
        "--name-prefix", "cli-", "--ca", str(pki.ca.cert_path), "--cert-dir", str(sim_certs),
        "--issue-from", str(pki.dir), "--json", str(out), "--quiet",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()
    assert "issued 2 client certificates" in stderr.decode()
    summary = json.loads(out.read_text())
    assert summary["registrations"] == 2 and summary["errors"] == {}
    vens = {v.ven_name: v.fingerprint for v in await served.vtn.store.list_vens(SERVICE)}
    assert vens == {n: fingerprint(sim_certs / f"ven-{n}.pem") for n in ("cli-00001",
                                                                        "cli-00002")}


async def test_openleadr_clients_use_their_vens_certificates(served: Served, pki: Pki) -> None:
    logging.getLogger("openleadr").setLevel(logging.CRITICAL)
    tls = TlsOptions(ca_file=pki.ca.cert_path, cert_dir=pki.dir, issue_from=pki.dir)
    opts = options(served, vens=2, ders_per_ven=1, client="openleadr", report_s=1.0, tls=tls)
    store = served.vtn.store

    async def registered() -> bool:
        vens = await store.list_vens(SERVICE)
        return len(vens) == 2 and all(v.registered for v in vens)

    async with fleet(opts):
        await eventually(registered, timeout=15)
    for v in await store.list_vens(SERVICE):
        assert v.fingerprint == fingerprint(ven_cert_paths(pki.dir, v.ven_name).cert)


def test_one_context_per_certificate(pki: Pki) -> None:
    a = pki.vens["osb-00001"]
    shared = ClientTls(TlsOptions(ca_file=pki.ca.cert_path, cert_file=a.cert_path,
                                  key_file=a.key_path), ["x", "y"])
    shared.prepare()
    assert shared.context(0) is shared.context(1)
    per_ven = ClientTls(TlsOptions(ca_file=pki.ca.cert_path, cert_dir=pki.dir,
                                   issue_from=pki.dir), ["x", "y"])
    per_ven.prepare()
    assert per_ven.issued == 2
    assert per_ven.context(0) is per_ven.context(0)
    assert per_ven.context(0) is not per_ven.context(1)
    assert per_ven.fingerprint(0) != per_ven.fingerprint(1)


def test_cli_refuses_unusable_tls_options(pki: Pki, tmp_path: Path) -> None:
    runner = CliRunner()
    ca, a = str(pki.ca.cert_path), pki.vens["osb-00001"]

    def run(*args: str) -> str:
        result = runner.invoke(main, ["run", "--vens", "2", "--quiet", *args])
        assert result.exit_code != 0
        return result.output

    assert "https://" in run("--vtn", "http://127.0.0.1:1", "--ca", ca)
    assert "either" in run("--vtn", "https://127.0.0.1:1", "--cert", str(a.cert_path),
                           "--cert-dir", str(pki.dir))
    assert "--issue-from needs --cert-dir" in run("--vtn", "https://127.0.0.1:1",
                                                  "--issue-from", str(pki.dir))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no usable ca.pem" in run("--vtn", "https://127.0.0.1:1", "--cert-dir", str(empty),
                                     "--issue-from", str(empty))
    # no certificate for osb-00002 and nothing to issue it with: stops before any traffic
    out = run("--vtn", "https://127.0.0.1:1", "--cert-dir", str(pki.dir), "--duration", "1s")
    assert "no certificate for osb-00002" in out
