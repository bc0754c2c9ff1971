"""``vtn events`` on a real data directory: create, list, show, modify, cancel, errors."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from registry.events import OptType
from registry.models import Ven
from registry.port import Batch, OptAnswer
from tests.api_support import der
from tests.conftest import make_vtn
from vtn.cli import main as cli
from vtn.config import Config


def seed(config: Config) -> dict[str, str]:
    ders = [der("boiler", "ven-1", aggregator_id="A1"), der("pv", "ven-1", aggregator_id="A1"),
            der("ev", "ven-2", aggregator_id="A2")]
    vens = [Ven(ven_id="ven-1", ven_name="osb-1", aggregator_id="A1"),
            Ven(ven_id="ven-2", ven_name="osb-2", aggregator_id="A2")]
    asyncio.run(commit(config, Batch(vens=vens, ders=ders)))
    return {d.device_name: d.device_id for d in ders}


async def commit(config: Config, batch: Batch) -> None:
    vtn = make_vtn(config)
    await vtn.start()
    try:
        await vtn.store.commit(batch)
    finally:
        await vtn.stop()


@pytest.fixture
def vtn_cli(config: Config) -> Any:
    runner = CliRunner()
    env = {"VTN_STORE_URL": config.store.url} if config.store.url else {}  # TEST_STORE=mongo

    def invoke(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(cli, [*args[:2], "--data-dir", str(config.data_dir), *args[2:]]
                               if args[0] == "events" else list(args), env=env)
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    return invoke


def test_create_list_show_modify_cancel(config: Config, vtn_cli: Any) -> None:
    ids = seed(config)
    created = json.loads(vtn_cli(
        "events", "create", "--program", "peak", "--start", "+10m", "--duration", "1h",
        "--signal", "SIMPLE:level:1,2,3", "--signal", "LOAD_DISPATCH:delta:-500",
        "--units", "W", "--ven", "ven-1", "--der", ids["ev"], "--priority", "2",
        "--ramp-up", "5m", "--id", "ev-1", "--json").stdout)
    assert created["event_id"] == "ev-1" and created["created_by"] == "cli"
    assert created["summary"] == {"vens": 2, "ders": 3}
    assert created["duration_s"] == 3600 and created["ramp_up_s"] == 300
    assert [iv["duration_s"] for iv in created["signals"][0]["intervals"]] == [1200] * 3
    assert created["signals"][1]["units"] == "W"
    assert created["signals"][1]["item_kind"] == "powerReal"
    start = datetime.fromisoformat(created["dtstart"])
    assert timedelta(minutes=9) < start - datetime.now(UTC) <= timedelta(minutes=10)
    assert created["status_now"] == "far"

    vtn_cli("events", "create", "--program", "eco", "--start", "2030-01-01T10:00:00Z",
            "--duration", "30m", "--signal", "ELECTRICITY_PRICE:price:0.31", "--units", "EUR",
            "--der", ids["boiler"], "--test", "--no-response", "--id", "ev-2")
    rows = json.loads(vtn_cli("events", "list", "--json").stdout)
    assert [r["event_id"] for r in rows] == ["ev-1", "ev-2"]
    assert rows[1]["signals"][0]["item_kind"] == "currencyPerKWh"
    assert rows[1]["test_event"] is True and rows[1]["response_required"] is False
    assert [r["event_id"] for r in json.loads(
        vtn_cli("events", "list", "--program", "eco", "--json").stdout)] == ["ev-2"]
    table = vtn_cli("events", "list").stdout
    assert "ev-1" in table and "peak" in table

    now = datetime.now(UTC)
    asyncio.run(commit(config, Batch(
        delivered=[("ev-1", "ven-1", 0, now), ("ev-1", "ven-2", 0, now)],
        opt_answers=[OptAnswer("ev-1", "ven-1", OptType.IN, 0, now)])))
    shown = json.loads(vtn_cli("events", "show", "ev-1", "--json").stdout)
    assert {d["ven_id"]: d["response"] for d in shown["deliveries"]} == {
        "ven-1": "optIn", "ven-2": "no response"}
    assert shown["totals"]["opted_in"] == 1 and shown["totals"]["ders"] == 3
    text = vtn_cli("events", "show", "ev-1").stdout
    assert "ven-1" in text and "optIn" in text and "1 opted in" in text

    modified = json.loads(vtn_cli("events", "modify", "ev-1", "--signal", "SIMPLE:level:3",
                                  "--json").stdout)
    assert modified["modification_number"] == 1
    assert [s["signal_name"] for s in modified["signals"]] == ["SIMPLE"]
    assert modified["signals"][0]["intervals"] == [{"duration_s": 3600.0, "value": 3.0}]
    longer = json.loads(vtn_cli("events", "modify", "ev-1", "--duration", "2h", "--json").stdout)
    assert longer["modification_number"] == 2 and longer["duration_s"] == 7200
    assert longer["signals"][0]["intervals"] == [{"duration_s": 7200.0, "value": 3.0}]
    assert "modified event ev-1 (modification 3)" in vtn_cli(
        "events", "modify", "ev-1", "--start", "+1h").stdout

    assert "cancelled event ev-1 (modification 4)" in vtn_cli("events", "cancel", "ev-1").stdout
    again = json.loads(vtn_cli("events", "cancel", "ev-1", "--json").stdout)
    assert again["modification_number"] == 4 and again["status_now"] == "cancelled"
    assert [r["event_id"] for r in json.loads(
        vtn_cli("events", "list", "--status", "cancelled", "--json").stdout)] == ["ev-1"]
    log = vtn_cli("log", "tail", "--data-dir", str(config.data_dir), "--json").stdout
    kinds = [e["kind"] for e in json.loads(log)]
    assert kinds.count("event.modified") == 3 and "event.cancelled" in kinds


@pytest.mark.parametrize("args, message", [
    (["--signal", "SIMPLE:level:1", "--ven", "nope"], "targets.ven_ids: unknown"),
    (["--signal", "SIMPLE:level:9", "--ven", "ven-1"], "SIMPLE levels"),
    (["--signal", "SIMPLE:price:1", "--ven", "ven-1"], "does not fit"),
    (["--signal", "SIMPLE-level-1", "--ven", "ven-1"], "--signal"),
    (["--signal", "SIMPLE:level:x", "--ven", "ven-1"], "are not numbers"),
    (["--signal", "SIMPLE:level:1"], "at least one target"),
    (["--ven", "ven-1"], "at least one signal"),
    (["--signal", "SIMPLE:level:1", "--ven", "ven-1", "--start", "soonish"], "--start"),
    (["--signal", "SIMPLE:level:1", "--ven", "ven-1", "--start", "0001-01-01T00:00:00"],
     "dtstart"),
    (["--signal", "SIMPLE:level:1", "--ven", "ven-1", "--id", "a/b"], "--id"),
])
def test_create_errors_are_one_line_and_exit_1(config: Config, vtn_cli: Any, args: list[str],
                                               message: str) -> None:
    seed(config)
    result = vtn_cli("events", "create", "--program", "p", "--duration", "1h", *args, ok=False)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert json.loads(vtn_cli("events", "list", "--json").stdout) == []


def test_modify_and_cancel_errors(config: Config, vtn_cli: Any) -> None:
    seed(config)
    for args in (["modify", "nope", "--priority", "1"], ["cancel", "nope"], ["show", "nope"]):
        result = vtn_cli("events", *args, ok=False)
        assert result.exit_code == 1 and "nope" in result.stderr, result.output
    vtn_cli("events", "create", "--program", "p", "--duration", "1h", "--signal",
            "SIMPLE:level:1", "--ven", "ven-1", "--id", "ev-x")
    result = vtn_cli("events", "modify", "ev-x", ok=False)
    assert result.exit_code == 1 and "nothing to change" in result.stderr
    vtn_cli("events", "cancel", "ev-x")
    result = vtn_cli("events", "modify", "ev-x", "--priority", "1", ok=False)
    assert result.exit_code == 1 and "cancelled" in result.stderr
