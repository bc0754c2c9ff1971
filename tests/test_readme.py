"""The README's "Running for real" works when pasted (issue #18): its shell blocks marked
``<!-- readme-test: run -->`` run in order in one bash, as written, in a fresh directory;
a ``background`` block (``vtn serve``) is started in the background and waited for on
``/ready``. Only the port (8080 -> a free one) and ``$HOME`` (a temporary directory)
differ from what a user pastes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.cli_support import clean_env
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- readme-test: (run|background) -->\s*```sh\n(.*?)```", re.S)


def marked_blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


def script_of(blocks: list[tuple[str, str]], port: int) -> str:
    lines = ["set -euo pipefail", "SERVERS=()",
             'trap \'for p in "${SERVERS[@]}"; do kill "$p" 2>/dev/null; wait "$p"; done\' EXIT']
    for kind, body in blocks:
        body = body.replace("8080", str(port))
        if kind == "run":
            lines.append(body)
        else:
            lines.append(f"( {body.strip()} ) > serve.log 2>&1 &")
            lines.append("SERVERS+=($!)")
            lines.append(f"for i in $(seq 100); do curl -sf http://127.0.0.1:{port}/ready "
                         ">/dev/null && break; sleep 0.2; done")
    return "\n".join(lines) + "\n"


def test_readme_marks_the_running_for_real_blocks() -> None:
    kinds = [k for k, _ in marked_blocks((ROOT / "README.md").read_text())]
    assert kinds.count("background") == 1 and kinds.count("run") >= 2


def test_running_for_real_works_as_pasted(tmp_path: Path) -> None:
    blocks = marked_blocks((ROOT / "README.md").read_text())
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    home = tmp_path / "home"
    home.mkdir()
    script = script_of(blocks, free_port())
    env = clean_env(HOME=str(home), PATH=os.environ["PATH"])
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=180)
    log = (tmp_path / "serve.log").read_text() if (tmp_path / "serve.log").exists() else ""
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{log}"
    out = result.stdout
    assert "provisioned 50 VENs (osb-00001 .. osb-00050)" in out
    assert re.search(r"VENs\s+51 \(50 registered\)", out), out  # ven-sim's 50 registered
    assert '"status": "ready"' in out and 'vtn_vens{liveness="online"}' in out
    assert "backup of" in out and list(tmp_path.glob("vtn-backup-*.sqlite3"))
    assert (home / "vtn-data" / "vtn.sqlite3").exists()  # the one store of every command
    assert "registration_refused" not in log
