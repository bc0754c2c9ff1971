"""kill -9 the VTN right after it acknowledged: everything acknowledged is still there."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.conftest import free_port
from tests.oadr import metadata, status_payload, update
from vtn.codec import decode, encode
from vtn.codec import messages as m

ROOT = Path(__file__).resolve().parents[1]


def vtn_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "vtn.cli", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


async def start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        vtn_cmd("serve", "--data-dir", str(data_dir), "--port", str(port)),
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as s:
        for _ in range(200):
            try:
                async with s.get(f"http://127.0.0.1:{port}/health") as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("VTN did not start")


async def send(port: int, service: str, msg: m.Message) -> m.Message:
    url = f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b/{service}"
    async with (
        aiohttp.ClientSession() as s,
        s.post(url, data=encode(msg), headers={"Content-Type": "application/xml"}) as r,
    ):
        assert r.status == 200
        return decode(await r.read())


def cli_json(data_dir: Path, *args: str) -> list[dict]:  # type: ignore[type-arg]
    out = subprocess.run(
        vtn_cmd(*args, "--data-dir", str(data_dir), "--json"),
        env=env(),
        check=True,
        capture_output=True,
    )
    return json.loads(out.stdout)


async def test_acknowledged_state_survives_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    subprocess.run(
        vtn_cmd(
            "vens",
            "add",
            "--name",
            "osb-k9",
            "--account",
            "acc-1",
            "--aggregator",
            "agg-1",
            "--data-dir",
            str(data),
        ),
        env=env(),
        check=True,
        capture_output=True,
    )
    proc = await start(data, port)
    try:
        reg = await send(
            port, "EiRegisterParty", m.CreatePartyRegistration(request_id="r1", ven_name="osb-k9")
        )
        assert isinstance(reg, m.CreatedPartyRegistration) and reg.response.code == 200
        ven_id = reg.ven_id or ""
        rep = await send(port, "EiReport", metadata(ven_id, {"boiler": "Water_Heater"}))
        assert isinstance(rep, m.RegisteredReport) and rep.response.code == 200
        rr = next(
            r.report_request_id
            for r in rep.report_requests
            if r.report_specifier_id == "status-spec"
        )
        upd = await send(
            port, "EiReport", update(ven_id, rr, "status-spec", [status_payload("boiler-status")])
        )
        assert isinstance(upd, m.UpdatedReport) and upd.response.code == 200
    finally:
        proc.send_signal(signal.SIGKILL)  # no shutdown, no flush
        proc.wait()

    vens = cli_json(data, "vens", "list")
    assert [(v["ven_name"], v["ven_id"], v["registered"], v["registration_id"]) for v in vens] == [
        ("osb-k9", ven_id, True, reg.registration_id)
    ]
    ders = cli_json(data, "ders", "list")
    assert [(d["resource_id"], d["device_class"], d["max_capacity"]) for d in ders] == [
        ("boiler", "dhwDevice", 3000.0)
    ]
    assert ders[0]["status"]["online"] is True

    # after a restart the queued oadrRegisterReport is still waiting for the VEN's poll
    proc = await start(data, port)
    try:
        queued = await send(port, "OadrPoll", m.Poll(ven_id=ven_id))
        assert isinstance(queued, m.RegisterReport)
        again = await send(
            port, "EiReport", update(ven_id, rr, "status-spec", [status_payload("boiler-status")])
        )
        assert isinstance(again, m.UpdatedReport) and again.response.code == 200
    finally:
        proc.terminate()
        proc.wait()
    log = cli_json(data, "log", "tail", "-n", "100")
    kinds = [e["kind"] for e in log]
    assert kinds[:3] == ["ven.provisioned", "ven.registered", "ven.liveness"]
    assert "der.created" in kinds and "report.registered" in kinds
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
