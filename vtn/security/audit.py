"""Security events in the process log: refused registrations, certificate mismatches,
refused signatures, one WARNING line each naming the VEN, at most ``PER_MINUTE`` lines a
minute (then one line saying how many were not logged), and counted in /metrics
(``vtn_security_events_total{kind}``). The durable trace stays the event log."""

from __future__ import annotations

import logging
import time

from vtn.metrics import METRICS

log = logging.getLogger("vtn.security")
PER_MINUTE = 30


class _Window:
    def __init__(self) -> None:
        self.start = 0.0
        self.logged = 0
        self.suppressed = 0


_window = _Window()


def security_event(kind: str, ven_name: str | None, reason: str,
                   ven_id: str | None = None) -> None:
    METRICS.count(METRICS.security, kind)
    now = time.monotonic()
    w = _window
    if now - w.start >= 60.0:
        if w.suppressed:
            log.warning("%d more security events not logged in the last minute "
                        "(see vtn_security_events_total)", w.suppressed)
        w.start, w.logged, w.suppressed = now, 0, 0
    if w.logged >= PER_MINUTE:
        w.suppressed += 1
        return
    w.logged += 1
    name = ascii(ven_name or "-")[1:-1][:80]  # a VEN chooses its name: no forged lines
    log.warning("%s: VEN %s: %s", kind, name, reason,
                extra={"event": kind, "ven_name": name, "ven_id": ven_id})
