"""Running the real ``vtn`` / ``ven-sim`` executables of this checkout as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
VTN = str(BIN / "vtn")
VEN_SIM = str(BIN / "ven-sim")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without VTN_* settings of the test process (TEST_STORE & co)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VTN_")}
    env.update(extra)
    return env


def run(*args: str, cwd: Path | None = None, timeout: float = 60, env: dict[str, str] | None = None,
        user: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = list(args)
    if user is not None:
        cmd = as_user(user) + cmd
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else clean_env())


def as_user(user: str) -> list[str]:
    """Prefix running a command as an unprivileged user (root ignores file permissions)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions cannot be tested")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr lines that are not log records (timestamps) of the command."""
    return [ln for ln in result.stderr.splitlines() if ln.strip() and not ln[:4].isdigit()]


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode != 0, result
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    line = lines[0]
    assert line.startswith("Error: "), line
    for needle in needles:
        assert needle in line, line
    return line
