"""Mass liveness transitions are one INFO line, not one per VEN (issue #18)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from registry.models import Ven
from registry.port import Batch
from tests.conftest import FakeClock
from vtn import liveness
from vtn.app import Vtn


async def test_a_sweep_logs_one_summary_line(vtn: Vtn, clock: FakeClock,
                                             caplog: pytest.LogCaptureFixture) -> None:
    now = clock()
    vens = [Ven(ven_name=f"osb-{i}", registered=True, last_seen=now, poll_freq_s=10.0)
            for i in range(60)]
    await vtn.store.commit(Batch(vens=vens))
    for v in vens:
        await vtn.store.mark_online(v.ven_id, now)
    clock.advance(45)  # past stale_after_polls (3 x 10 s)
    with caplog.at_level(logging.INFO, logger="vtn.liveness"):
        changes = await liveness.sweep(vtn.ctx)
    assert len(changes) == 60
    lines = [r.getMessage() for r in caplog.records if r.name == "vtn.liveness"
             and r.levelno == logging.INFO]
    assert lines == ["liveness: 60 VENs changed (60 stale; 0 DERs)"]
    caplog.clear()
    clock.advance(timedelta(seconds=1).total_seconds())
    with caplog.at_level(logging.INFO, logger="vtn.liveness"):
        assert await liveness.sweep(vtn.ctx) == []
    assert not [r for r in caplog.records if r.name == "vtn.liveness"]
