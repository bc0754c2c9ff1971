"""Fleet counters: messages, errors, latency and VEN states, in constant memory."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class LogHistogram:
    """Fixed log-spaced buckets (20 per decade from 10 us to 100 s): constant memory
    whatever the number of samples, percentiles within ~12 %."""

    PER_DECADE = 20
    LOW = 1e-5
    BUCKETS = 7 * PER_DECADE + 1

    def __init__(self) -> None:
        self.counts = [0] * (self.BUCKETS + 1)
        self.total = 0
        self.sum = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        if seconds <= self.LOW:
            i = 0
        else:
            i = min(self.BUCKETS, 1 + int(math.log10(seconds / self.LOW) * self.PER_DECADE))
        self.counts[i] += 1
        self.total += 1
        self.sum += seconds
        self.max = max(self.max, seconds)

    def upper(self, i: int) -> float:
        return self.LOW * 10 ** (i / self.PER_DECADE)

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the q-quantile (None without samples)."""
        if not self.total:
            return None
        rank = max(1, math.ceil(q * self.total))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return min(self.upper(i), self.max)
        return self.max

    def to_dict(self) -> dict[str, float | int | None]:
        def ms(x: float | None) -> float | None:
            return None if x is None else round(x * 1000, 3)

        return {
            "count": self.total,
            "p50_ms": ms(self.quantile(0.5)),
            "p90_ms": ms(self.quantile(0.9)),
            "p99_ms": ms(self.quantile(0.99)),
            "max_ms": ms(self.max if self.total else None),
            "mean_ms": ms(self.sum / self.total if self.total else None),
        }


@dataclass
class Stats:
    """What the fleet did. ``sent``/``received`` are keyed by OpenADR element name,
    ``errors`` by kind ("http 400", "oadr 452", "timeout", "connection", "decode")."""

    vens: int = 0
    ders_per_ven: int = 0
    scenario: str = ""
    client: str = "oadr"
    transport: str = "pull"  # pull | push | xmpp
    pushed: int = 0  # messages the VTN pushed to the fleet (push and XMPP)
    started: float = field(default_factory=time.monotonic)
    elapsed_s: float = 0.0
    vens_registered: int = 0
    vens_online: int = 0
    vens_paused: int = 0
    vens_stopped: int = 0
    registrations: int = 0
    # DR events: (event, modification) pairs received, answers sent, optOut schedules sent
    events_received: int = 0
    opt_ins: int = 0
    opt_outs: int = 0
    opt_schedules: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    # bad scenario: what was sent on purpose, and how the VTN answered each kind
    bad_sent: Counter[str] = field(default_factory=Counter)
    bad_answers: dict[str, Counter[str]] = field(default_factory=dict)
    latency: LogHistogram = field(default_factory=LogHistogram)
    in_flight: int = 0
    lag_s: float = 0.0  # how late the scheduler runs due VENs
    memory_mb: float | None = None

    def tick(self) -> None:
        self.elapsed_s = time.monotonic() - self.started

    @property
    def requests(self) -> int:
        return sum(self.sent.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def server_errors(self) -> int:
        """5xx answers of the VTN, to real and to deliberately bad messages."""
        return sum(n for k, n in self.errors.items() if k.startswith("http 5"))

    def rate(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def bad_answer(self, kind: str, answer: str) -> None:
        self.bad_answers.setdefault(kind, Counter())[answer] += 1

    def to_dict(self) -> dict[str, Any]:
        self.tick()
        return {
            "vens": self.vens,
            "ders_per_ven": self.ders_per_ven,
            "scenario": self.scenario,
            "client": self.client,
            "transport": self.transport,
            "pushed": self.pushed,
            "elapsed_s": round(self.elapsed_s, 3),
            "vens_registered": self.vens_registered,
            "vens_online": self.vens_online,
            "vens_paused": self.vens_paused,
            "vens_stopped": self.vens_stopped,
            "registrations": self.registrations,
            "events": {"received": self.events_received, "opt_ins": self.opt_ins,
                       "opt_outs": self.opt_outs, "opt_schedules": self.opt_schedules},
            "requests": self.requests,
            "requests_per_s": round(self.rate(), 2),
            "sent": dict(sorted(self.sent.items())),
            "received": dict(sorted(self.received.items())),
            "errors": dict(sorted(self.errors.items())),
            "error_count": self.error_count,
            "server_errors": self.server_errors,
            "bad_sent": dict(sorted(self.bad_sent.items())),
            "bad_answers": {
                k: dict(sorted(v.items())) for k, v in sorted(self.bad_answers.items())
            },
            "latency": self.latency.to_dict(),
            "lag_s": round(self.lag_s, 3),
            "memory_mb": self.memory_mb,
        }
