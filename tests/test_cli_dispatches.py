"""``vtn dispatches`` on a real data directory (both stores): a group with members, a
dispatch created, listed, shown and cancelled through the CLI, and bad input as one line
with nothing written."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from registry.models import Liveness, Ven
from registry.port import SERVICE, Batch
from tests.api_support import der
from tests.conftest import make_vtn
from tests.test_cli_events import commit
from vtn.cli import main as cli
from vtn.config import Config


def seed(config: Config) -> dict[str, str]:
    """A1's group ``street``: boiler (3 kW) on ven-1, ev (7 kW) on ven-2, and an offline
    heat pump on ven-2; A2's pv is not a member."""
    ders = [der("boiler", "ven-1", aggregator_id="A1", available_capacity=3000,
                liveness=Liveness.ONLINE),
            der("ev", "ven-2", aggregator_id="A1", available_capacity=7000,
                liveness=Liveness.ONLINE),
            der("hp", "ven-2", aggregator_id="A1", available_capacity=2000,
                liveness=Liveness.OFFLINE),
            der("pv", "ven-3", aggregator_id="A2", available_capacity=5000,
                liveness=Liveness.ONLINE)]
    vens = [Ven(ven_id="ven-1", ven_name="osb-1", aggregator_id="A1"),
            Ven(ven_id="ven-2", ven_name="osb-2", aggregator_id="A1"),
            Ven(ven_id="ven-3", ven_name="osb-3", aggregator_id="A2")]
    asyncio.run(commit(config, Batch(vens=vens, ders=ders)))
    return {d.device_name: d.device_id for d in ders}


@pytest.fixture
def vtn_cli(config: Config) -> Any:
    runner = CliRunner()
    env = {"VTN_STORE_URL": config.store.url} if config.store.url else {}  # TEST_STORE=mongo

    def invoke(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(cli, [*args[:2], "--data-dir", str(config.data_dir),
                                     *args[2:]], env=env)
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    return invoke


@pytest.fixture
def street(config: Config, vtn_cli: Any) -> dict[str, str]:
    ids = seed(config)
    vtn_cli("groups", "create", "--name", "street", "--aggregator", "A1")
    return ids


def pending(config: Config) -> dict[str, int]:
    async def count() -> dict[str, int]:
        vtn = make_vtn(config)
        await vtn.start()
        try:
            return {v: await vtn.store.pending_count(v) for v in ("ven-1", "ven-2", "ven-3")}
        finally:
            await vtn.stop()

    return asyncio.run(count())


def test_create_list_show_cancel(config: Config, vtn_cli: Any,
                                 street: dict[str, str]) -> None:
    created = json.loads(vtn_cli(
        "dispatches", "create", "--group", "A1/street", "--kw", "5,2", "--start", "+10m",
        "--duration", "30m", "--id", "d1", "--json").stdout)
    assert created["dispatch_id"] == "d1" and created["created_by"] == "cli"
    assert created["aggregator_id"] == "A1" and created["group_name"] == "street"
    assert created["slots"] == [{"duration_s": 900.0, "kw": 5.0},
                                {"duration_s": 900.0, "kw": 2.0}]
    assert created["summary"] == {"members": 3, "assigned": 2, "vens": 2}
    assert created["status_now"] == "scheduled"
    # one DR event per member VEN, queued for its next poll
    events = {e["event_id"]: e for e in json.loads(vtn_cli("events", "list", "--json").stdout)}
    assert sorted(events) == ["d1.0", "d1.1"]
    assert [iv["value"] for iv in events["d1.0"]["signals"][0]["intervals"]] == [-1.5, -0.6]
    assert pending(config) == {"ven-1": 1, "ven-2": 1, "ven-3": 0}

    text = vtn_cli("dispatches", "create", "--group", "A1/street", "--kw", "20",
                   "--start", "+2h", "--end", "+3h", "--id", "d2").stdout
    assert text.startswith("created dispatch d2 of group A1/street (power)")
    assert "2 of 3 members assigned, events queued for 2 VENs" in text

    rows = json.loads(vtn_cli("dispatches", "list", "--json").stdout)
    assert [r["dispatch_id"] for r in rows] == ["d1", "d2"]
    assert rows[1]["slots"] == [{"duration_s": 3600.0, "kw": 20.0}]
    assert [r["dispatch_id"] for r in json.loads(vtn_cli(
        "dispatches", "list", "--group", "A1/street", "--open", "--json").stdout)] == ["d1",
                                                                                      "d2"]
    assert json.loads(vtn_cli("dispatches", "list", "--aggregator", "A2", "--json").stdout) \
        == []
    table = vtn_cli("dispatches", "list").stdout
    assert "d1" in table and "street" in table and "5.00/2.00" in table
    assert all(len(line) <= 80 for line in table.splitlines()), table
    assert table.rstrip().endswith("2 dispatches")
    cut = vtn_cli("dispatches", "list", "--limit", "1").stdout
    assert "d2" not in cut and "1+ dispatches (more:" in cut

    status = json.loads(vtn_cli("dispatches", "show", "d1", "--json").stdout)
    assert [(s["requested_kw"], s["assigned_kw"], s["opted_in_kw"], s["shortfall_kw"])
            for s in status["slots"]] == [(5.0, 5.0, 0.0, 0.0), (2.0, 2.0, 0.0, 0.0)]
    members = {m["device_id"]: m for m in status["members"]}
    assert members[street["boiler"]]["assigned_kw"] == [1.5, 0.6]
    assert members[street["ev"]]["assigned_kw"] == [3.5, 1.4]
    assert (members[street["hp"]]["state"], members[street["hp"]]["reason"]) == (
        "unavailable", "offline")
    assert status["totals"]["states"] == {"assigned": 2, "unavailable": 1}
    assert status["totals"]["responses"] == {"pending": 2}
    shown = vtn_cli("dispatches", "show", "d1").stdout
    for needle in ("group A1/street", "boiler", "osb-2", "unavailable: offline", "1.50/0.60",
                   "3 members", "2 events to 2 VENs"):
        assert needle in shown, shown
    assert all(len(line) <= 80 for line in shown.splitlines()), shown
    assert street["boiler"] not in shown and street["boiler"] in vtn_cli(
        "dispatches", "show", "d1", "--wide").stdout

    assert vtn_cli("dispatches", "cancel", "d1").stdout.startswith(
        "cancelled dispatch d1 of group A1/street (power); status cancelled")
    again = json.loads(vtn_cli("dispatches", "cancel", "d1", "--json").stdout)
    assert again["status_now"] == "cancelled" and again["rev"] == 1  # idempotent
    events = {e["event_id"]: e for e in json.loads(vtn_cli("events", "list", "--json").stdout)}
    assert events["d1.0"]["status_now"] == events["d1.1"]["status_now"] == "cancelled"
    assert events["d2.0"]["status_now"] != "cancelled"
    assert pending(config) == {"ven-1": 1, "ven-2": 1, "ven-3": 0}  # the newest per event
    assert json.loads(vtn_cli("dispatches", "show", "d1", "--json").stdout)["status"] == \
        "cancelled"
    log = json.loads(vtn_cli("log", "tail", "--json").stdout)
    kinds = [e["kind"] for e in log]
    assert kinds.count("dispatch.created") == 2 and kinds.count("dispatch.cancelled") == 1


@pytest.mark.parametrize("args, message", [
    (["--group", "A1/nope", "--kw", "5", "--duration", "1h"], "no group A1/nope"),
    (["--group", "A2/street", "--kw", "5", "--duration", "1h"], "no group A2/street"),
    (["--group", "A1/street", "--kw", "-5", "--duration", "1h"],
     "--kw/--duration (slots.0.kw): Input should be greater than or equal to 0"),
    (["--group", "A1/street", "--kw", "five", "--duration", "1h"], "--kw: 'five'"),
    (["--group", "A1/street", "--kw", "5", "--start", "+2h", "--end", "+1h"],
     "--end: "),
    (["--group", "A1/street", "--kw", "5", "--start", "2020-01-01T10:00:00Z",
      "--duration", "1h"], "over before it starts"),
    (["--group", "A1/street", "--kw", "5"], "give --duration or --end"),
    (["--group", "A1/street", "--kw", "5", "--duration", "2d"], "--kw/--duration"),
    (["--group", "A1/street", "--duration", "1h"], "--kw: required"),
    (["--group", "A1/street", "--kw", "5", "--duration", "1h", "--mode", "disconnect"],
     "--kw: required with --mode power, and only with it"),
    (["--group", "A1/street", "--kw", "5", "--duration", "1h", "--id", "a.b"], "--id"),
    (["--group", "A1/street", "--kw", "5", "--duration", "1h", "--ramp", "2h"], "--ramp"),
])
def test_bad_create_is_one_line_and_writes_nothing(config: Config, vtn_cli: Any,
                                                  street: dict[str, str], args: list[str],
                                                  message: str) -> None:
    result = vtn_cli("dispatches", "create", *args, ok=False)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert json.loads(vtn_cli("dispatches", "list", "--json").stdout) == []
    assert json.loads(vtn_cli("events", "list", "--json").stdout) == []
    assert pending(config) == {"ven-1": 0, "ven-2": 0, "ven-3": 0}


def test_unknown_dispatch_and_no_store(config: Config, vtn_cli: Any,
                                       street: dict[str, str]) -> None:
    for command in ("show", "cancel"):
        result = vtn_cli("dispatches", command, "nope", ok=False)
        assert result.exit_code == 1, result.output
        assert result.stderr.strip() == "Error: no dispatch nope", result.stderr
    if config.store.url:  # MongoDB: the store is a server, there is no directory to miss
        return
    for args in (["list"], ["show", "d1"],
                 ["create", "--group", "A1/street", "--kw", "1", "--duration", "1h"]):
        result = CliRunner().invoke(cli, ["dispatches", args[0], "--data-dir",
                                          str(config.data_dir / "typo"), *args[1:]])
        assert result.exit_code == 1 and "no store at" in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (config.data_dir / "typo").exists()


def test_a_completed_dispatch_is_not_cancelled(config: Config, vtn_cli: Any,
                                              street: dict[str, str]) -> None:
    """A completed dispatch cannot be cancelled (409 in the API): one line, nothing
    changed."""
    vtn_cli("dispatches", "create", "--group", "A1/street", "--kw", "4", "--duration", "1h",
            "--id", "d9")

    async def backdate() -> None:
        vtn = make_vtn(config)
        await vtn.start()
        try:
            d = await vtn.store.get_dispatch("d9", SERVICE)
            assert d is not None
            await vtn.store.commit(Batch(dispatches=[d.model_copy(update={
                "dtstart": d.dtstart - timedelta(hours=2), "rev": d.rev + 1})],
                dispatch_expect=[("d9", d.rev)]))
        finally:
            await vtn.stop()

    asyncio.run(backdate())
    result = vtn_cli("dispatches", "cancel", "d9", ok=False)
    assert result.exit_code == 1 and "is completed" in result.stderr, result.output
    (row,) = json.loads(vtn_cli("dispatches", "list", "--json").stdout)
    assert row["status_now"] == "completed" and row["cancelled_at"] is None


def test_a_disconnect_takes_no_kw(config: Config, vtn_cli: Any, street: dict[str, str]) -> None:
    doc = json.loads(vtn_cli("dispatches", "create", "--group", "A1/street", "--mode",
                             "disconnect", "--start", "+5m", "--duration", "1h", "--json").stdout)
    assert doc["mode"] == "disconnect" and doc["slots"] == [{"duration_s": 3600.0, "kw": 0.0}]
    assert doc["summary"]["vens"] == 2
    table = vtn_cli("dispatches", "list").stdout
    assert "disconnect" in table and "1h" in table
