"""kill -9 the VTN right after it acknowledged an event, a distribute, an opt answer, an opt
schedule, a modification: after a restart on the same store nothing is lost and nothing
reaches the VEN twice as a new event (issue #14).

The VTN runs as ``python -m vtn.cli serve`` (SQLite in the data directory, or with
``TEST_STORE=mongo`` the test's database on the session's nx-27017); the test speaks real
HTTP, the side API with a service token signed with the data directory's dev key, and
OpenADR with our codec as the VEN. Every OpenADR message either way is XSD-validated.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from registry.api.auth import issue_token
from tests.oadr import metadata
from tests.test_durability import ROOT, vtn_cmd
from vtn.codec import decode, encode, validate
from vtn.codec import messages as m
from vtn.config import Config

PROGRAM = "http://dr.example/programs/peak"


class VtnProcess:
    """``vtn serve`` on one data directory / store, killed with SIGKILL and restarted."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.port = config.http.port
        self.env = {**os.environ, "PYTHONPATH": str(ROOT),
                    # no resend of unanswered report requests while the test runs
                    "VTN_REPORTS_ACK_TIMEOUT_S": "86400"}
        if config.store.url:  # TEST_STORE=mongo: the test's own database
            self.env["VTN_STORE_URL"] = config.store.url
        self.proc: subprocess.Popen[bytes] | None = None
        self.session: aiohttp.ClientSession | None = None
        self.token = issue_token(config, "service")  # dev key written to the data dir

    def cli(self, *args: str) -> bytes:
        return subprocess.run(vtn_cmd(*args, "--data-dir", str(self.config.data_dir)),
                              env=self.env, check=True, capture_output=True).stdout

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json"))

    async def start(self) -> None:
        assert self.proc is None
        self.proc = subprocess.Popen(
            vtn_cmd("serve", "--data-dir", str(self.config.data_dir), "--port", str(self.port)),
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.session = self.session or aiohttp.ClientSession()
        for _ in range(400):
            try:
                async with self.session.get(f"http://127.0.0.1:{self.port}/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert self.proc.poll() is None, "VTN exited"
            await asyncio.sleep(0.05)
        raise AssertionError("VTN did not start")

    def kill_9(self) -> None:
        """SIGKILL: no shutdown, no flush."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    async def restart(self) -> None:
        self.kill_9()
        await self.start()

    async def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None
        if self.session is not None:
            await self.session.close()

    # --- OpenADR -----------------------------------------------------------------

    async def send(self, service: str, msg: m.Message) -> m.Message:
        body = encode(msg)
        validate(body)
        url = f"http://127.0.0.1:{self.port}/OpenADR2/Simple/2.0b/{service}"
        assert self.session is not None
        async with self.session.post(url, data=body,
                                     headers={"Content-Type": "application/xml"}) as r:
            assert r.status == 200
            raw = await r.read()
        validate(raw)
        return decode(raw)

    async def poll(self, ven_id: str) -> m.Message:
        return await self.send("OadrPoll", m.Poll(ven_id=ven_id))

    async def drain(self, ven_id: str) -> list[m.Message]:
        """Poll until oadrResponse; the messages the VEN received on the way."""
        got: list[m.Message] = []
        for _ in range(50):
            reply = await self.poll(ven_id)
            if isinstance(reply, m.Response):
                assert reply.response.code == 200
                return got
            got.append(reply)
        raise AssertionError("the outbox never emptied")

    # --- side API ----------------------------------------------------------------

    async def api(self, method: str, path: str, body: Any = None,
                  headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        assert self.session is not None
        h = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        url = f"http://127.0.0.1:{self.port}/api/v1{path}"
        async with self.session.request(method, url, json=body, headers=h) as r:
            return r.status, await r.json(content_type=None), r.headers.copy()


def distributes(msgs: list[m.Message]) -> list[m.DistributeEvent]:
    return [x for x in msgs if isinstance(x, m.DistributeEvent)]


def carried(msgs: list[m.Message]) -> list[tuple[str, int, str]]:
    """(eventID, modificationNumber, eventStatus) of every event the VEN was sent."""
    return [(e.event_id, e.modification_number, e.event_status)
            for d in distributes(msgs) for e in d.events]


def delivery(doc: dict[str, Any], ven_id: str) -> dict[str, Any]:
    (only,) = doc["deliveries"]
    assert only["ven_id"] == ven_id
    return only


async def test_events_answers_and_opts_survive_kill_9(config: Config) -> None:
    vtn = VtnProcess(config)
    vtn.cli("vens", "add", "--name", "osb-ev-k9", "--account", "acc-1",
            "--aggregator", "agg-1")
    try:
        await vtn.start()
        reg = await vtn.send("EiRegisterParty",
                             m.CreatePartyRegistration(request_id="r1", ven_name="osb-ev-k9"))
        assert isinstance(reg, m.CreatedPartyRegistration) and reg.response.code == 200
        ven = reg.ven_id or ""
        rep = await vtn.send("EiReport", metadata(ven, {"boiler": "Water_Heater"}))
        assert isinstance(rep, m.RegisteredReport) and rep.response.code == 200
        assert carried(await vtn.drain(ven)) == []  # the registration's own messages

        # 1. the API acknowledged the event: kill -9 at once
        start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
        status, created, headers = await vtn.api("POST", "/events", {
            "event_id": "peak-k9", "program": PROGRAM, "dtstart": start.isoformat(),
            "signals": [{"signal_name": "SIMPLE", "signal_type": "level",
                         "intervals": [{"duration_s": 1800, "value": 2},
                                       {"duration_s": 1800, "value": 1}]}],
            "targets": {"ven_ids": [ven]}, "ramp_up_s": 300})
        assert status == 201, created
        assert headers["ETag"] == '"0"' and created["summary"] == {"vens": 1, "ders": 1}
        await vtn.restart()
        status, doc, headers = await vtn.api("GET", "/events/peak-k9")
        assert status == 200 and headers["ETag"] == '"0"'
        assert doc["modification_number"] == 0 and doc["dtstart"] == created["dtstart"]
        assert [iv["value"] for iv in doc["signals"][0]["intervals"]] == [2, 1]
        d = delivery(doc, ven)
        assert (d["delivered_mod"], d["opt"], d["response"]) == (None, None, "pending")
        assert len(d["ders"]) == 1

        # the queued distribute survived: exactly one copy, then nothing
        got = await vtn.drain(ven)
        assert carried(got) == [("peak-k9", 0, "far")]
        (wire,) = distributes(got)[0].events
        assert wire.target.ven_ids == [ven] and wire.target.resource_ids == ["boiler"]
        assert wire.market_context == PROGRAM
        assert await vtn.poll(ven) == m.Response(m.EiResponse(request_id=""), ven_id=ven)

        # 2. the distribute was acknowledged by being sent: kill -9; it is not sent again
        await vtn.restart()
        assert carried(await vtn.drain(ven)) == []
        _, doc, _ = await vtn.api("GET", "/events/peak-k9")
        d = delivery(doc, ven)
        assert (d["delivered_mod"], d["response"]) == (0, "no response")

        # 3. the VEN's optIn was acknowledged: kill -9
        answer = await vtn.send("EiEvent", m.CreatedEvent(
            response=m.EiResponse(request_id=""), ven_id=ven,
            event_responses=[m.EventResponse(m.EiResponse(request_id="d-1"), "peak-k9", 0,
                                             "optIn")]))
        assert isinstance(answer, m.Response) and answer.response.code == 200
        await vtn.restart()
        _, doc, _ = await vtn.api("GET", "/events/peak-k9")
        assert doc["modification_number"] == 0
        d = delivery(doc, ven)
        assert (d["delivered_mod"], d["opt"], d["opt_mod"], d["response"]) == (
            0, "optIn", 0, "optIn")
        assert doc["totals"]["opted_in"] == 1
        assert carried(await vtn.drain(ven)) == []  # nothing re-delivered as new
        again = await vtn.send("EiEvent", m.RequestEvent(request_id="rq-1", ven_id=ven))
        assert isinstance(again, m.DistributeEvent)
        assert carried([again]) == [("peak-k9", 0, "far")]  # the same event, unchanged

        # 4. an opt schedule was acknowledged: kill -9
        window = (start - timedelta(hours=1), timedelta(hours=4))
        opt = await vtn.send("EiOpt", m.CreateOpt(
            opt_id="opt-k9", opt_type="optOut", opt_reason="participating",
            request_id="o-1", ven_id=ven, created_date_time=datetime.now(UTC),
            market_context=PROGRAM, resource_ids=["boiler"], availability=[window]))
        assert isinstance(opt, m.CreatedOpt) and opt.response.code == 200
        await vtn.restart()
        status, opts, _ = await vtn.api("GET", f"/opts?ven_id={ven}")
        assert status == 200
        (sched,) = opts["items"]
        assert (sched["opt_id"], sched["opt_type"], sched["resource_ids"]) == (
            "opt-k9", "optOut", ["boiler"])
        assert sched["cancelled_at"] is None
        assert [(datetime.fromisoformat(w["start"]), w["duration_s"])
                for w in sched["windows"]] == [(window[0], 4 * 3600)]
        assert carried(await vtn.drain(ven)) == []

        # 5. a modification was acknowledged: kill -9; the VEN gets modification 1 once
        status, modified, headers = await vtn.api(
            "PATCH", "/events/peak-k9", {"vtn_comment": "deeper", "signals": [
                {"signal_name": "SIMPLE", "signal_type": "level",
                 "intervals": [{"duration_s": 3600, "value": 3}]}]},
            headers={"If-Match": '"0"'})
        assert status == 200, modified
        assert headers["ETag"] == '"1"'
        await vtn.restart()
        _, doc, headers = await vtn.api("GET", "/events/peak-k9")
        assert headers["ETag"] == '"1"' and doc["vtn_comment"] == "deeper"
        d = delivery(doc, ven)
        assert (d["delivered_mod"], d["opt_mod"], d["response"]) == (0, 0, "pending")
        got = await vtn.drain(ven)
        assert carried(got) == [("peak-k9", 1, "far")]
        (wire,) = distributes(got)[0].events
        assert [iv.value for iv in wire.signals[0].intervals] == [3]
        await vtn.restart()
        assert carried(await vtn.drain(ven)) == []

        # 6. a cancel was acknowledged: kill -9; the VEN gets modification 2, cancelled, once
        status, cancelled, _ = await vtn.api("POST", "/events/peak-k9/cancel")
        assert status == 200 and cancelled["modification_number"] == 2
        await vtn.restart()
        got = await vtn.drain(ven)
        assert carried(got) == [("peak-k9", 2, "cancelled")]
        await vtn.restart()
        assert carried(await vtn.drain(ven)) == []
        _, doc, _ = await vtn.api("GET", "/events/peak-k9")
        assert doc["status_now"] == "cancelled"
        d = delivery(doc, ven)
        assert (d["delivered_mod"], d["opt"], d["opt_mod"]) == (2, "optIn", 0)
    finally:
        await vtn.close()
    # each acknowledged change is in the event log once, and no seq was lost or reused
    log = vtn.cli_json("log", "tail", "-n", "1000")
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    kinds = [e["kind"] for e in log]
    for kind in ("event.created", "event.opt", "opt.created", "event.modified",
                 "event.cancelled"):
        assert kinds.count(kind) == 1, (kind, kinds)

