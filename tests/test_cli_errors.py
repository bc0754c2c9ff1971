"""Every CLI failure a user can cause is one line on stderr and exit status 1 (issue #18);
the traceback only with ``vtn --debug``."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_support import VTN, assert_one_line_error, clean_env, run
from tests.conftest import free_port


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's tmp_path parents are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="vtn-cli-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_version() -> None:
    result = run(VTN, "--version")
    assert result.returncode == 0 and result.stdout.startswith("vtn, version ")


def test_port_in_use_is_one_line_for_serve_and_demo(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run(VTN, "serve", "--data-dir", str(tmp_path / "d"), "--port", port)
        assert_one_line_error(result, "address already in use", "--port")
        result = run(VTN, "demo", "--data-dir", str(tmp_path / "d"), "--port", port,
                     "--duration", "5")
        assert_one_line_error(result, "address already in use")
        result = run(VTN, "--debug", "serve", "--data-dir", str(tmp_path / "d"), "--port", port)
        assert result.returncode != 0 and "Traceback" in result.stderr


def test_mongodb_with_nothing_listening_fails_in_seconds_with_a_progress_line(
    tmp_path: Path,
) -> None:
    url = f"mongodb://127.0.0.1:{free_port()}/vtn"
    env = clean_env(VTN_STORE_URL=url, VTN_STORE_MONGO_TIMEOUT_MS="2000")
    started = time.monotonic()
    result = run(VTN, "serve", "--port", str(free_port()), cwd=tmp_path, env=env)
    elapsed = time.monotonic() - started
    assert_one_line_error(result, "cannot reach MongoDB at 127.0.0.1")
    assert "waiting for MongoDB" in result.stderr
    assert elapsed < 15
    result = run(VTN, "vens", "list", cwd=tmp_path, env=env)
    assert_one_line_error(result, "cannot reach MongoDB")


def test_unsupported_store_url(tmp_path: Path) -> None:
    result = run(VTN, "vens", "add", "--name", "x", cwd=tmp_path,
                 env=clean_env(VTN_STORE_URL="postgres://db/vtn"))
    assert_one_line_error(result, "unsupported store url", "postgres://")


def test_data_directory_without_permission(shared_tmp: Path) -> None:
    locked = shared_tmp / "locked"
    locked.mkdir(mode=0o555)
    result = run(VTN, "vens", "add", "--name", "x", "--data-dir", str(locked / "d"),
                 user="nobody")
    assert_one_line_error(result, "permission denied", str(locked / "d"))
    result = run(VTN, "serve", "--data-dir", str(locked / "d"), "--port", str(free_port()),
                 user="nobody")
    assert_one_line_error(result, "permission denied")


def test_read_only_store(shared_tmp: Path) -> None:
    data = shared_tmp / "d"
    assert run(VTN, "vens", "add", "--name", "a", "--data-dir", str(data)).returncode == 0
    data.chmod(0o777)
    (data / "vtn.sqlite3").chmod(0o444)
    result = run(VTN, "vens", "add", "--name", "b", "--data-dir", str(data), user="nobody")
    assert_one_line_error(result, "read-only")


def test_config_error_names_the_file_without_pydantic_footer(tmp_path: Path) -> None:
    cfg = tmp_path / "vtn.toml"
    cfg.write_text('[http]\nport = "eighty"\n')
    line = assert_one_line_error(run(VTN, "vens", "list", "--config", str(cfg)),
                                 str(cfg), "http.port")
    assert "errors.pydantic.dev" not in line
    cfg.write_text("[http\n")
    assert_one_line_error(run(VTN, "vens", "list", "--config", str(cfg)), str(cfg))


def test_typo_in_data_dir_refuses_instead_of_creating_an_empty_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(VTN, "vens", "add", "--name", "a", "--data-dir", str(data)).returncode == 0
    for command in (["ders", "list"], ["vens", "list"], ["log", "tail"], ["export"],
                    ["events", "list"], ["views", "list"], ["reports", "list"]):
        result = run(VTN, *command, "--data-dir", str(tmp_path / "dta"))
        assert_one_line_error(result, "no store at", "dta")
    assert not (tmp_path / "dta").exists()
    assert run(VTN, "vens", "list", "--data-dir", str(data)).returncode == 0
