"""CLI tables an operator can read (issue #18): 80 columns by default, a count and a
"more" hint, enum options validated, VEN names where a venID is expected, kW; bulk
provisioning; vtn status."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli_support import VTN, assert_one_line_error, run

FIXTURE = Path(__file__).parent / "fixtures" / "store-v0.sqlite3"  # 3 VENs, 12 DERs


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy(FIXTURE, d / "vtn.sqlite3")
    return d


def cli(data: Path, *args: str) -> str:
    result = run(VTN, *args, "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_ders_list_fits_80_columns_counts_and_says_there_is_more(data: Path) -> None:
    out = cli(data, "ders", "list", "--limit", "5")
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "…" not in out  # nothing truncated
    assert "max kW" in out and "osb-00001" in out  # kW, and the VEN's name
    assert lines[-1].startswith("5+ DERs") and "--limit" in lines[-1]
    assert cli(data, "ders", "list").splitlines()[-1] == "12 DERs"
    wide = cli(data, "ders", "list", "--wide", "--limit", "1")
    assert "device_id" in wide and "venID" in wide


def test_enum_options_are_validated_and_case_insensitive(data: Path) -> None:
    out = cli(data, "ders", "list", "--class", "dhwdevice")
    assert out.splitlines()[-1] == "2 DERs"
    for args in (["--class", "boiler"], ["--liveness", "bogus"]):
        result = run(VTN, "ders", "list", *args, "--data-dir", str(data))
        assert result.returncode == 2 and "is not one of" in result.stderr


def test_ven_name_where_a_ven_id_is_expected(data: Path) -> None:
    by_name = cli(data, "ders", "list", "--ven", "osb-00002", "--json")
    ven_ids = {d["ven_id"] for d in json.loads(by_name)}
    assert len(ven_ids) == 1
    by_id = json.loads(cli(data, "ders", "list", "--ven", ven_ids.pop(), "--json"))
    assert by_id == json.loads(by_name)
    assert_one_line_error(run(VTN, "ders", "list", "--ven", "nope", "--data-dir", str(data)),
                          "no VEN")


def test_vens_list_filters_and_counts(data: Path) -> None:
    assert cli(data, "vens", "list").splitlines()[-1] == "3 VENs"
    assert cli(data, "vens", "list", "--liveness", "offline").splitlines()[-1] == "0 VENs"
    assert cli(data, "vens", "list", "--name", "osb-0000", "--limit", "2"
               ).splitlines()[-1].startswith("2+ VENs")


def test_bulk_provisioning_all_or_none(tmp_path: Path) -> None:
    data = tmp_path / "d"
    out = cli(data, "vens", "add", "--name", "osb-{n:05d}", "--count", "3", "--start", "7")
    assert "provisioned 3 VENs (osb-00007 .. osb-00009)" in out
    listing = tmp_path / "vens.csv"
    listing.write_text("# name,account,aggregator\nhome-1,acc-1,agg-1\nosb-00008\n")
    result = run(VTN, "vens", "add", "--from-file", str(listing), "--data-dir", str(data))
    assert_one_line_error(result, "osb-00008", "exists already")
    names = {v["ven_name"] for v in json.loads(cli(data, "vens", "list", "--json"))}
    assert "home-1" not in names  # nothing half-provisioned
    listing.write_text("home-1,acc-1,agg-1\nhome-2\n")
    cli(data, "vens", "add", "--from-file", str(listing), "--aggregator", "agg-9")
    vens = {v["ven_name"]: v for v in json.loads(cli(data, "vens", "list", "--json"))}
    assert vens["home-1"]["account_id"] == "acc-1" and vens["home-2"]["aggregator_id"] == "agg-9"


def test_status_answers_the_first_question(data: Path) -> None:
    out = cli(data, "status")
    assert "VENs     3 (3 registered)" in out and "DERs     12" in out
    assert "dhwDevice" in out and "schema v1" in out
    figures = json.loads(cli(data, "status", "--json"))
    assert figures["capacity_by_class"]["dhwDevice"][0] == 2
