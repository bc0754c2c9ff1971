"""`vtn demo` without options does not write ./data (issue #18): it says which temporary
store it uses, and talks from the start."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.cli_support import VTN, clean_env
from tests.conftest import free_port


def test_demo_uses_a_temporary_store_and_says_so(tmp_path: Path) -> None:
    proc = subprocess.Popen([VTN, "demo", "--port", str(free_port()), "--vens", "1"],
                            cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "registered demo-osb-00001" in line or not line:
                break
    finally:
        proc.terminate()
        proc.wait(30)
    text = "".join(lines)
    assert lines[0].startswith("demo store: ") and "vtn-demo-" in lines[0], text
    assert "registered demo-osb-00001" in text
    assert not (tmp_path / "data").exists()
    store = Path(lines[0].split()[2])
    assert (store / "vtn.sqlite3").exists()
