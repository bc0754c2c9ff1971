"""`vtn demo` (the README's first command), run briefly as a subprocess."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.conftest import free_port


async def test_the_demo_shows_the_event_and_the_drop(tmp_path: Path) -> None:
    """``vtn demo`` with a short duration, as a subprocess: it ends by itself and says
    what was dispatched, what the OSBs answered and how much the load dropped."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vtn.cli", "demo", "--data-dir", str(tmp_path / "data"),
        "--port", str(free_port()), "--duration", "22",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "registered demo-osb-00001" in text
    assert "dispatching DR event demo-" in text
    assert "far -> active" in text and "active -> completed" in text
    assert "fleet load before the event" in text and "drop" in text
    assert "the VTN's measured response" in text
    answers = next(x for x in text.splitlines() if "OSBs sent it (3 delivered)" in x)
    opted_in = int(answers.split(" opted in")[0].rsplit(" ", 1)[1])
    line = next(x for x in text.splitlines() if x.startswith("fleet load before the event"))
    drop_kw = float(line.split("drop ")[1].split(" kW")[0])
    if opted_in:  # ven-sim's households are busy for 15 % of events, seeded by eventID
        assert "optIn" in text and drop_kw > 0, line
