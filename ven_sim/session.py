"""What an OSB's OpenADR session is made of: service names, VEN states and roles,
request IDs and reply codes, the :class:`Link` to the VTN and the fleet-wide :class:`Env`.

Shared by :mod:`ven_sim.osb` (the state machine), :mod:`ven_sim.reporting`,
:mod:`ven_sim.misbehave`, the aggregator and the fleet; it imports none of them.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from ven_sim.scenario import Scenario
from ven_sim.stats import Stats
from vtn.codec import messages as m

REG, REPORT, EVENT, POLL = "EiRegisterParty", "EiReport", "EiEvent", "OadrPoll"
OPT = "EiOpt"
STATUS_SPEC, USAGE_SPEC = "osb-status", "osb-usage"
INF = float("inf")

UNREGISTERED, REGISTERED, PAUSED, STOPPED = range(4)
ROLE_NONE, ROLE_FLAP, ROLE_CHURN = range(3)

_ids = itertools.count(1)


def request_id() -> str:
    return f"sim-{next(_ids):x}"


def code_of(reply: m.Message | None) -> int | None:
    """The eiResponse code of a reply (200 for messages without one, None for no reply)."""
    if reply is None:
        return None
    resp = getattr(reply, "response", None)
    return resp.code if isinstance(resp, m.EiResponse) else m.OK


def ok(rid: str) -> m.EiResponse:
    return m.EiResponse(m.OK, "OK", rid)


class Link(Protocol):
    """How an OSB talks to the VTN: the fleet's HTTP client, or a fake in unit tests."""

    stats: Stats

    async def send(self, service: str, msg: m.Message) -> m.Message | None:
        """The decoded reply, or None after a transport, HTTP or decode error (counted)."""
        ...

    async def send_bad(self, kind: str, service: str, body: bytes) -> None:
        """Post a deliberately broken request and count how the VTN answered."""
        ...


@dataclass
class Env:
    """Fleet-wide settings and clocks shared by every OSB."""

    scenario: Scenario
    poll_s: float | None = None  # overrides the VTN's oadrRequestedOadrPollFreq
    report_s: float | None = None  # caps the period of oadrUpdateReport
    rng: random.Random = field(default_factory=random.Random)
    now: Callable[[], float] = time.monotonic
    wall_offset: float = 0.0  # wall clock = now() + wall_offset
    # push VENs: the base of their oadrTransportAddress (PUSH_BASE/ven/NAME); None: pull
    push_base: str | None = None
    sampling: m.SamplingRate = field(
        default_factory=lambda: m.SamplingRate(timedelta(seconds=1), timedelta(hours=1))
    )

    def __post_init__(self) -> None:
        if not self.wall_offset:
            self.wall_offset = time.time() - self.now()

    def wall(self, now: float) -> float:
        return now + self.wall_offset

    def transport_address(self, name: str) -> str | None:
        return None if self.push_base is None else f"{self.push_base.rstrip('/')}/ven/{name}"
