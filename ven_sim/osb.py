"""One OSB gateway: the OpenADR 2.0b VEN state machine of a simulated household.

An :class:`Osb` holds only its registration, report requests and DER list; it does no
I/O itself. :meth:`Osb.step` runs whatever is due (register, report, poll, scenario
events) over a :class:`Link` and returns when it next wants to run, so one scheduler
drives any number of them without a task per VEN.

The session vocabulary (services, states, :class:`Link`, :class:`Env`) is in
:mod:`ven_sim.session`, report building in :mod:`ven_sim.reporting`, deliberately wrong
requests in :mod:`ven_sim.misbehave`; the DERs' behaviour is :mod:`ven_sim.devices`, how
the OSB answers DR events and sheds load for them :mod:`ven_sim.events`.
"""

from __future__ import annotations

from ven_sim import misbehave, reporting
from ven_sim.devices import Der
from ven_sim.events import OsbEvents
from ven_sim.reporting import ActiveReport
from ven_sim.session import (
    EVENT,
    INF,
    OPT,
    PAUSED,
    POLL,
    REG,
    REGISTERED,
    REPORT,
    ROLE_CHURN,
    ROLE_FLAP,
    ROLE_NONE,
    STATUS_SPEC,
    STOPPED,
    UNREGISTERED,
    USAGE_SPEC,
    Env,
    Link,
    code_of,
    ok,
    request_id,
)
from vtn.codec import messages as m

# the names this module always had, for callers that import them from here
__all__ = [
    "INF", "PAUSED", "REGISTERED", "ROLE_CHURN", "ROLE_FLAP", "ROLE_NONE", "STATUS_SPEC",
    "STOPPED", "UNREGISTERED", "USAGE_SPEC", "ActiveReport", "Env", "Link", "Osb",
    "code_of", "ok", "request_id",
]

MAX_DRAIN = 20  # messages fetched in one poll cycle before yielding to other VENs


class Osb:
    """A simulated OSB gateway (one VEN) with its DERs."""

    __slots__ = ("name", "location", "ders", "role", "ven_id", "registration_id", "state",
                 "poll_s", "next_poll", "reports", "wake_scenario", "paused_until",
                 "online", "fails", "events")

    def __init__(self, name: str, location: tuple[float, float], ders: tuple[Der, ...],
                 role: int = ROLE_NONE) -> None:
        self.name = name
        self.location = location
        self.ders = ders
        self.role = role
        self.ven_id: str | None = None
        self.registration_id: str | None = None
        self.state = UNREGISTERED
        self.poll_s = 10.0
        self.next_poll = 0.0
        self.reports: list[ActiveReport] | None = None  # None: METADATA not registered
        self.wake_scenario = INF
        self.paused_until = 0.0
        self.online = False
        self.fails = 0
        self.events: OsbEvents | None = None  # None until a distribute lists an event

    # --- stats bookkeeping -------------------------------------------------------------

    def _set_registered(self, link: Link, registered: bool) -> None:
        was = self.state in (REGISTERED, PAUSED)
        if registered and not was:
            link.stats.vens_registered += 1
            self.state = REGISTERED
        elif not registered and was:
            link.stats.vens_registered -= 1
            self.state = UNREGISTERED
            self.registration_id = None
            self.reports = None
        if not registered:
            self._set_online(link, False)

    def _set_online(self, link: Link, online: bool) -> None:
        if online != self.online:
            link.stats.vens_online += 1 if online else -1
            self.online = online

    def _exchange(self, link: Link, reply: m.Message | None) -> int | None:
        """Note how an exchange went; drops the registration when the VTN forgot it."""
        code = code_of(reply)
        if code is None:
            self._set_online(link, False)
        elif code == m.NOT_REGISTERED_OR_AUTHORIZED:
            self._set_registered(link, False)
        elif self.state == REGISTERED:
            self._set_online(link, True)
        return code

    # --- the step ------------------------------------------------------------------------

    async def step(self, link: Link, env: Env, now: float) -> float | None:
        """Do what is due at ``now``; returns the next due time (None: never again)."""
        if self.state == STOPPED:
            return None
        if now >= self.wake_scenario:
            wake = await self._scenario_event(link, env, now)
            if wake is not None:
                return wake
        if self.state == PAUSED:
            if now < self.paused_until:
                return self.paused_until
            self.state = REGISTERED
            link.stats.vens_paused -= 1
            self.next_poll = now if env.push_base is None else INF
        if self.state == UNREGISTERED:
            if not await self.register(link, env, rereg=False):
                return self._backoff(env)
        if self.state == REGISTERED and self.reports is None:
            if not await self.register_reports(link, env):
                return self._backoff(env)
        self.fails = 0
        if self.state == REGISTERED and self.reports:
            await self._send_reports(link, env, now)
        if self.state == REGISTERED and env.now() >= self.next_poll:
            await self.poll(link, env)
            if self.state == REGISTERED:
                self.next_poll = env.now() + self.poll_s
            bad = env.scenario.bad
            if bad.share and env.rng.random() < bad.share:
                await self.send_bad(link, env, env.rng.choice(bad.kinds))
        if self.state == STOPPED:
            return None
        if self.state != REGISTERED:
            return self._backoff(env) if self.state == UNREGISTERED else self.paused_until
        wake = min(self.next_poll, self.wake_scenario)
        for r in self.reports or ():
            wake = min(wake, r.due)
        return wake

    def _backoff(self, env: Env) -> float:
        self.fails += 1
        delay = min(60.0, self.poll_s, 0.5 * 2 ** min(self.fails, 8))
        return env.now() + delay * (0.75 + 0.5 * env.rng.random())

    # --- registration ----------------------------------------------------------------------

    async def register(self, link: Link, env: Env, rereg: bool) -> bool:
        """oadrQueryRegistration + oadrCreatePartyRegistration (+ METADATA reports).

        ``rereg`` re-registers under the current registrationID (after
        oadrRequestReregistration); otherwise the VEN registers afresh by its name.
        """
        if not rereg:
            query = await link.send(REG, m.QueryRegistration(request_id()))
            if self._exchange(link, query) != m.OK:
                return False
        address = env.transport_address(self.name)
        msg = m.CreatePartyRegistration(
            request_id=request_id(),
            ven_name=self.name,
            ven_id=self.ven_id if rereg else None,
            registration_id=self.registration_id if rereg else None,
            http_pull_model=address is None,
            transport_address=address,
        )
        reply = await link.send(REG, msg)
        if (
            self._exchange(link, reply) != m.OK
            or not isinstance(reply, m.CreatedPartyRegistration)
            or not reply.ven_id
        ):
            if rereg:  # the VTN forgot us: start again from scratch
                self._set_registered(link, False)
            return False
        self.ven_id = reply.ven_id
        self.registration_id = reply.registration_id
        poll = reply.poll_freq.total_seconds() if reply.poll_freq else 0.0
        self.poll_s = env.poll_s or poll or 10.0
        self._set_registered(link, True)
        self._set_online(link, True)
        link.stats.registrations += 1
        self.reports = None
        # a push VEN never polls: the VTN sends (ven_sim.push)
        self.next_poll = env.now() if env.push_base is None else INF
        if not await self.register_reports(link, env):
            return False
        await self.request_events(link, env)
        return True

    def metadata(self, env: Env) -> m.RegisterReport:
        """METADATA_TELEMETRY_STATUS and _USAGE: one status and one usage rID per DER."""
        return reporting.metadata(self.ders, self.location, self.ven_id, env)

    async def register_reports(self, link: Link, env: Env) -> bool:
        reply = await link.send(REPORT, self.metadata(env))
        if self._exchange(link, reply) != m.OK or not isinstance(reply, m.RegisteredReport):
            return False
        self.reports = []
        pending = self.adopt(reply.report_requests, env)
        created = await link.send(REPORT, m.CreatedReport(
            response=ok(reply.response.request_id), pending_report_request_ids=pending,
            ven_id=self.ven_id,
        ))
        self._exchange(link, created)
        return self.state == REGISTERED

    def adopt(self, requests: list[m.ReportRequest], env: Env) -> list[str]:
        """Start reporting what the VTN asked for; returns the active request IDs."""
        current = self.reports if self.reports is not None else []
        self.reports = reporting.adopt(current, self.ders, requests, env)
        return [r.request_id for r in self.reports]

    # --- reports ---------------------------------------------------------------------------

    def update(self, due: list[ActiveReport], wall: float) -> m.UpdateReport:
        """oadrUpdateReport with the intervals since the last one (at most MAX_INTERVALS)."""
        return reporting.update(self.ders, self.location, self.ven_id, due, wall, self.events)

    async def _send_reports(self, link: Link, env: Env, now: float) -> None:
        due = [r for r in self.reports or () if r.due <= now]
        if not due:
            return
        for r in due:
            r.due = r.due + r.every if r.due + r.every > now else now + r.every
        reply = await link.send(REPORT, self.update(due, env.wall(now)))
        code = self._exchange(link, reply)
        if code == m.INVALID_ID and self.reports:
            # the VTN no longer knows a request (e.g. it cancelled it): register afresh
            self.reports = None
        elif isinstance(reply, m.UpdatedReport) and reply.cancel_report is not None:
            self._drop(reply.cancel_report.report_request_ids)

    def _drop(self, request_ids: list[str]) -> list[str]:
        self.reports = [r for r in self.reports or () if r.request_id not in request_ids]
        return [r.request_id for r in self.reports]

    # --- polling ---------------------------------------------------------------------------

    async def poll(self, link: Link, env: Env) -> None:
        """oadrPoll, handling each delivered message, until the VTN has nothing pending."""
        for _ in range(MAX_DRAIN):
            if self.state != REGISTERED or self.ven_id is None:
                return
            reply = await link.send(POLL, m.Poll(ven_id=self.ven_id))
            code = self._exchange(link, reply)
            if reply is None or isinstance(reply, m.Response) or code != m.OK:
                return
            await self.handle(link, env, reply)

    async def handle(self, link: Link, env: Env, msg: m.Message) -> None:
        """Answer one message the VTN delivered on poll."""
        ven_id = self.ven_id
        if isinstance(msg, m.RegisterReport):
            await self._answer(link, REPORT, m.RegisteredReport(ok(msg.request_id), ven_id=ven_id))
        elif isinstance(msg, m.CreateReport):
            if self.reports is None:
                self.reports = []
            pending = self.adopt(msg.report_requests, env)
            await self._answer(link, REPORT, m.CreatedReport(
                ok(msg.request_id), pending_report_request_ids=pending, ven_id=ven_id))
        elif isinstance(msg, m.CancelReport):
            pending = self._drop(msg.report_request_ids)
            await self._answer(link, REPORT, m.CanceledReport(
                ok(msg.request_id), pending_report_request_ids=pending, ven_id=ven_id))
        elif isinstance(msg, m.RequestReregistration):
            await self._answer(link, REG, m.Response(ok(""), ven_id=ven_id))
            if self.state == REGISTERED:
                await self.register(link, env, rereg=True)
        elif isinstance(msg, m.CancelPartyRegistration):
            await self._answer(link, REG, m.CanceledPartyRegistration(
                ok(msg.request_id), registration_id=msg.registration_id, ven_id=ven_id))
            self._set_registered(link, False)
            if env.scenario.on_vtn_cancel == "stop":
                self.state = STOPPED
                link.stats.vens_stopped += 1
            else:
                await self.register(link, env, rereg=False)
        elif isinstance(msg, m.DistributeEvent):
            await self.take_events(link, env, msg)
        else:
            link.stats.errors["unexpected " + m.ELEMENT_NAMES[type(msg)]] += 1

    async def _answer(self, link: Link, service: str, msg: m.Message) -> None:
        self._exchange(link, await link.send(service, msg))

    # --- events ----------------------------------------------------------------------------

    async def request_events(self, link: Link, env: Env) -> None:
        """oadrRequestEvent (after registering, as real VENs do) and take the answer."""
        if self.ven_id is None:
            return
        reply = await link.send(EVENT, m.RequestEvent(request_id(), self.ven_id))
        if self._exchange(link, reply) == m.OK and isinstance(reply, m.DistributeEvent):
            await self.take_events(link, env, reply)

    async def take_events(self, link: Link, env: Env, msg: m.DistributeEvent) -> None:
        """Hold the distribute's events; answer the new ones (one oadrCreatedEvent), send
        optOut schedules for busy DERs (see :mod:`ven_sim.events`)."""
        if self.events is None:
            if not msg.events:
                return  # the common case: nothing to hold, nothing to answer
            self.events = OsbEvents(self.name)
        ven_id = self.ven_id or ""
        out = self.events.receive(self.ders, self.location[1], msg, env.wall(env.now()), ven_id)
        if not self.events.held:
            self.events = None
        stats = link.stats
        stats.events_received += out.new
        if out.responses and ven_id:
            for r in out.responses:
                if r.opt_type == "optIn":
                    stats.opt_ins += 1
                else:
                    stats.opt_outs += 1
            # 2.0b: the eiResponse requestID is empty when eventResponses carry theirs
            reply = await link.send(EVENT, m.CreatedEvent(
                ok(""), ven_id=ven_id, event_responses=out.responses))
            if self._exchange(link, reply) is not None:
                for h in out.pending:
                    h.answered = True
        for opt_id in out.cancels:
            await self._answer(link, OPT, m.CancelOpt(request_id(), opt_id, ven_id))
        for opt in out.opts:
            stats.opt_schedules += 1
            await self._answer(link, OPT, opt)

    # --- scenarios ---------------------------------------------------------------------------

    def plan_scenario(self, env: Env, now: float) -> None:
        sc = env.scenario
        every = sc.flapping.every_s if self.role == ROLE_FLAP else sc.churn.every_s
        if self.role != ROLE_NONE:
            self.wake_scenario = now + every * (0.5 + env.rng.random())

    async def _scenario_event(self, link: Link, env: Env, now: float) -> float | None:
        """Start a flapping pause or a churn cycle; returns the wake time if one began."""
        sc = env.scenario
        if self.state != REGISTERED:
            self.plan_scenario(env, now)
            return None
        if self.role == ROLE_FLAP:
            self.state = PAUSED
            link.stats.vens_paused += 1
            self._set_online(link, False)
            self.paused_until = now + sc.flapping.pause_s
            self.plan_scenario(env, self.paused_until)
            return self.paused_until
        await self.cancel(link)
        self.plan_scenario(env, now + sc.churn.down_s)
        return now + sc.churn.down_s

    async def cancel(self, link: Link) -> None:
        """oadrCancelPartyRegistration (churn, or --cancel-on-exit)."""
        if self.state not in (REGISTERED, PAUSED) or not self.registration_id:
            return
        if self.state == PAUSED:
            link.stats.vens_paused -= 1
            self.state = REGISTERED
        reply = await link.send(REG, m.CancelPartyRegistration(
            request_id=request_id(), registration_id=self.registration_id, ven_id=self.ven_id))
        self._exchange(link, reply)
        self._set_registered(link, False)

    async def send_bad(self, link: Link, env: Env, kind: str) -> None:
        """One deliberately wrong request of ``kind`` (see scenarios/steady.toml)."""
        await misbehave.send_bad(self, link, env, kind)
