"""The operator's surface against real processes (issue #18): /metrics moving as a
ven-sim fleet does (one worker and two), /ready vs /health, refused registrations in the
log with the VEN's name, JSON logs, ven-sim's exit status, backup while serving."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.cli_support import VEN_SIM, VTN, clean_env, run
from tests.conftest import free_port


@contextmanager
def serving(data: Path, *args: str, env: dict[str, str] | None = None
            ) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = data.parent / f"serve-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([VTN, "serve", "--data-dir", str(data), "--port", str(port),
                                 *args], stderr=out, env=env or clean_env())
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if get(base + "/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        yield base, log
    finally:
        proc.terminate()
        proc.wait(20)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = get(base + "/metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name
               and all(dict(ls).get(k) == want for k, want in labels.items()))


def ven_sim(base: str, tmp: Path, *args: str, vens: int = 4) -> tuple[int, dict, str]:
    out = tmp / f"sim-{time.monotonic_ns()}.json"
    result = run(VEN_SIM, "run", "--vtn", base, "--vens", str(vens), "--poll", "1s",
                 "--quiet", "--json", str(out), *args, timeout=90)
    return result.returncode, json.loads(out.read_text()), result.stderr


def provision(data: Path, n: int) -> None:
    result = run(VTN, "vens", "add", "--name", "osb-{n:05d}", "--count", str(n),
                 "--data-dir", str(data))
    assert result.returncode == 0, result.stderr


def test_metrics_move_with_the_fleet_and_count_every_request(tmp_path: Path) -> None:
    data = tmp_path / "data"
    provision(data, 4)
    with serving(data) as (base, _log):
        before = scrape(base)
        assert total(before, "vtn_vens", liveness="online") == 0
        status, summary, err = ven_sim(base, tmp_path, "--duration", "4s")
        assert status == 0, err
        deadline = time.monotonic() + 10  # the store-wide gauges are cached for 5 s
        while True:
            after = scrape(base)
            if total(after, "vtn_vens", liveness="online") == 4 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert total(after, "vtn_openadr_requests_total") == summary["requests"]
        assert total(after, "vtn_openadr_requests_total", service="OadrPoll", outcome="ok") > 0
        assert total(after, "vtn_openadr_request_duration_seconds_count",
                     service="OadrPoll") == total(after, "vtn_openadr_requests_total",
                                                  service="OadrPoll")
        assert total(after, "vtn_vens", liveness="online") == 4
        assert total(after, "vtn_ders") == 16 and total(after, "vtn_store_up") == 1
        assert total(after, "vtn_job_duration_seconds_count", job="liveness.sweep") >= 1
        assert total(after, "vtn_store_schema_version") >= 1


def test_metrics_of_two_workers_are_summed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    provision(data, 4)
    with serving(data, "--workers", "2") as (base, _log):
        status, summary, err = ven_sim(base, tmp_path, "--duration", "4s")
        assert status == 0, err
        time.sleep(3)  # each worker shares its counters every 2 s
        for _ in range(4):  # whichever worker answers the scrape, it sees both
            assert total(scrape(base), "vtn_openadr_requests_total") == summary["requests"]


def test_refused_registrations_are_logged_and_ven_sim_says_why(tmp_path: Path) -> None:
    data = tmp_path / "data"
    provision(data, 1)
    with serving(data) as (base, log):
        status, summary, err = ven_sim(base, tmp_path, "--duration", "3s",
                                       "--start-index", "100", vens=3)
        assert status == 3, err
        assert "no VEN registered" in err and "463" in err and "vtn vens add" in err
        assert summary["verdict"]["exit_status"] == 3
        samples = scrape(base)
        assert total(samples, "vtn_security_events_total", kind="registration_refused") > 0
        assert total(samples, "vtn_openadr_refusals_total", code="463") > 0
    text = log.read_text()
    assert "registration_refused: VEN osb-00100" in text
    assert "stopped" in text  # a shutdown line


def test_ven_sim_against_no_vtn_gives_up_and_fails(tmp_path: Path) -> None:
    started = time.monotonic()
    status, summary, err = ven_sim(f"http://127.0.0.1:{free_port()}", tmp_path,
                                   "--duration", "60s", "--give-up", "2s", vens=2)
    assert status == 4 and "unreachable" in err
    assert time.monotonic() - started < 30


def test_ready_checks_the_store_health_does_not(tmp_path: Path) -> None:
    from tests.mongo_server import MongoServer, nx_available

    data = tmp_path / "data"
    with serving(data) as (base, _log):
        assert get(base + "/ready")[0] == 200 and get(base + "/health")[0] == 200
    if not nx_available():
        return
    server = MongoServer().start()
    env = clean_env(VTN_STORE_URL=server.url(), VTN_STORE_MONGO_TIMEOUT_MS="500",
                    VTN_STORE_MONGO_RETRIES="0")
    try:
        with serving(data, env=env) as (base, _log):
            assert get(base + "/ready")[0] == 200
            server.stop()
            status, body = get(base + "/ready")
            assert status == 503 and json.loads(body)["status"] == "unavailable"
            assert get(base + "/health")[0] == 200
    finally:
        server.stop()


def test_json_logs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serving(data, env=clean_env(VTN_LOGGING_FORMAT="json")) as (base, log):
        assert get(base + "/ready")[0] == 200
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert any("listening" in r["msg"] for r in records)
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)


def test_backup_while_serving_and_restore(tmp_path: Path) -> None:
    data = tmp_path / "data"
    provision(data, 6)
    backup = tmp_path / "b.sqlite3"
    with serving(data) as (base, _log):
        sim = subprocess.Popen([VEN_SIM, "run", "--vtn", base, "--vens", "6", "--poll", "0.5s",
                                "--duration", "6s", "--quiet"], env=clean_env())
        time.sleep(3)  # registrations, reports and polls are being written
        result = run(VTN, "backup", "--data-dir", str(data), str(backup))
        assert result.returncode == 0, result.stderr
        sim.wait(60)
    db = sqlite3.connect(backup)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM vens").fetchone()[0] == 6
    db.close()
    restored = tmp_path / "restored"
    result = run(VTN, "restore", "--data-dir", str(restored), str(backup))
    assert result.returncode == 0, result.stderr
    result = run(VTN, "status", "--json", "--data-dir", str(restored))
    assert json.loads(result.stdout)["vens_registered"] == 6
    result = run(VTN, "restore", "--data-dir", str(restored), str(backup))
    assert result.returncode == 1 and "--force" in result.stderr


def test_metrics_token_keeps_metrics_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = tmp_path / "vtn.toml"
    cfg.write_text('[http]\nmetrics_token = "scrape-me"\n')
    with serving(data, "--config", str(cfg)) as (base, _log):
        assert get(base + "/metrics")[0] == 401
        assert get(base + "/ready")[0] == 200  # probes stay open
        req = urllib.request.Request(base + "/metrics",
                                     headers={"Authorization": "Bearer wrong"})
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError("a wrong token was accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        req = urllib.request.Request(base + "/metrics",
                                     headers={"Authorization": "Bearer scrape-me"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and b"vtn_info" in r.read()
