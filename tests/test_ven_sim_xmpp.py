"""``ven-sim run --transport xmpp`` as a real process against a served VTN on a real
Prosody: the simulated OSBs register over XMPP, report their DERs, get an event created
through the API pushed to them and answer it; the VTN records every answer."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
from click.testing import CliRunner

from registry.port import SERVICE, DerQuery
from tests.conftest import serve
from tests.test_ven_sim_events_e2e import Api
from tests.test_xmpp_delivery import answered, create_event, prepare
from tests.xmpp_server import ProsodyServer
from tests.xmpp_support import VTN_JID, eventually, prosody
from ven_sim.cli import main as ven_sim
from vtn.config import Config

__all__ = ["prosody"]
VENS = 3


async def test_ven_sim_xmpp_fleet_registers_reports_and_answers_an_event(
        config: Config, prosody: ProsodyServer, tmp_path: Path) -> None:
    for i in range(VENS):
        prosody.add_account(f"osb-{i + 1:05d}", "fleet-pw")
    config.reports.usage_granularity_s = config.reports.status_granularity_s = 1
    config.reports.report_back_duration_s = 1
    served = await serve(prepare(config, prosody), run_jobs=True)
    summary = tmp_path / "summary.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ven_sim", "run", "--transport", "xmpp",
        "--vtn", f"xmpp:{VTN_JID}", "--xmpp-server", f"127.0.0.1:{prosody.port}",
        "--xmpp-password", "fleet-pw", "--xmpp-tls", "none", "--vens", str(VENS),
        "--duration", "60", "--ramp", "0.5", "--validate", "--quiet",
        "--json", str(summary), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = served.vtn.store
    try:
        async def reported() -> bool:
            ders = await store.list_ders(DerQuery(), SERVICE)
            return len(ders) == VENS * 4 and all(d.last_values for d in ders)

        await eventually(reported, timeout_s=90, every_s=0.2)
        vens = await store.list_vens(SERVICE)
        assert len(vens) == VENS
        assert {v.transport_name for v in vens} == {"xmpp"}
        assert {v.transport_address for v in vens} == {
            f"osb-{i + 1:05d}@localhost/ven" for i in range(VENS)}
        async with aiohttp.ClientSession() as session:
            api = Api(config, session)
            await create_event(api, "fleet-1", [v.ven_id for v in vens])
            responses = await answered(api, "fleet-1", VENS)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        await served.stop()
    assert proc.returncode == 0, err.decode()[-2000:]
    stats = json.loads(summary.read_text())
    assert set(responses.values()) <= {"optIn", "optOut"}
    assert stats["events"]["received"] == VENS  # each VEN saw the event once as new
    assert sum(r == "optIn" for r in responses.values()) == stats["events"]["opt_ins"]
    assert stats["vens_registered"] == VENS
    assert stats["errors"] == {}, stats["errors"]


def test_ven_sim_xmpp_refuses_a_bare_vtn_jid_in_one_line() -> None:
    result = CliRunner().invoke(ven_sim, [
        "run", "--transport", "xmpp", "--vtn", "xmpp:vtn@localhost", "--duration", "1"])
    assert result.exit_code == 2
    assert "must be full: user@domain/resource" in result.output
    assert "Traceback" not in result.output
