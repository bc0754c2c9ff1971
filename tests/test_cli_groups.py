"""``vtn groups`` on a real data directory: create, members, status, forecast, errors in
one line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.test_cli_events import seed
from vtn.cli import main as cli
from vtn.config import Config


@pytest.fixture
def groups_cli(config: Config) -> Any:
    runner = CliRunner()
    env = {"VTN_STORE_URL": config.store.url} if config.store.url else {}  # TEST_STORE=mongo

    def invoke(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(cli, ["groups", args[0], "--data-dir", str(config.data_dir),
                                     *args[1:]], env=env)
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    return invoke


def test_groups_from_the_cli(config: Config, groups_cli: Any) -> None:
    ids = seed(config)  # boiler, pv of A1; ev of A2
    out = groups_cli("create", "--name", "a1", "--aggregator", "A1", "--filter",
                     "device_class=otherLoad", "--exclude", ids["pv"]).stdout
    assert out.startswith("created ") and "A1/a1" in out
    members = json.loads(groups_cli("members", "a1", "--aggregator", "A1", "--json").stdout)
    assert [m["device_id"] for m in members] == [ids["boiler"]]
    assert "included 1" in groups_cli("include", "a1", ids["pv"], "--aggregator", "A1").stdout
    status = json.loads(groups_cli("status", "a1", "--aggregator", "A1").stdout)
    assert status["members"] == 2
    cim = json.loads(groups_cli("status", "a1", "--aggregator", "A1", "--cim").stdout)
    assert cim["EndDeviceGroup"]["Names"][0]["name"] == "a1"
    forecast = json.loads(groups_cli("forecast", "a1", "--aggregator", "A1", "--hours", "1",
                                     "--json").stdout)
    assert len(forecast["slots"]) == 4
    listed = groups_cli("list").stdout.splitlines()
    assert len(listed) == 1 and "v2" in listed[0]
    # errors: one line, non-zero exit, nothing written
    bad = groups_cli("include", "a1", ids["ev"], "--aggregator", "A1", ok=False)
    assert bad.exit_code == 1 and bad.output.count("\n") == 1 and "no such DER" in bad.output
    bad = groups_cli("create", "--name", "x", "--filter", "colour=red", ok=False)
    assert bad.exit_code == 1 and "not a group filter" in bad.output
    bad = groups_cli("status", "nope", ok=False)
    assert bad.exit_code == 1 and bad.output.strip() == "Error: no group nope"
    groups_cli("delete", "a1", "--aggregator", "A1")
    assert groups_cli("list").stdout.strip() == ""
