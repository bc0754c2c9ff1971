"""One fleet, two transports: a DR event created through the API reaches a pull VEN
(it polls) and a push VEN (the VTN POSTs to it), both ven-sim OSBs over real HTTP; each
answers optIn and the VTN records both answers. (wave-xmpp extends this to XMPP.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from registry.port import SERVICE
from tests.conftest import serve
from tests.push_support import allow_loopback_push
from tests.test_interop_openleadr import eventually
from tests.test_ven_sim_events_e2e import Api, simple
from ven_sim.events import household_busy, name_seed
from ven_sim.fleet import FleetOptions, run_fleet
from vtn.config import Config


def calm_event_id(names: list[str]) -> str:
    """An event id no simulated household is busy for (ven-sim then answers optIn)."""
    for i in range(1000):
        if not any(household_busy(name_seed(n), f"calm-{i}") for n in names):
            return f"calm-{i}"
    raise AssertionError("no calm event id")


async def test_event_reaches_a_pull_and_a_push_ven_and_both_opt_in(config: Config) -> None:
    fast = config
    fast.registration.open_enrollment = True
    fast.registration.poll_freq_s = 1
    allow_loopback_push(fast)
    served = await serve(fast, run_jobs=True)
    stop = asyncio.Event()
    base = served.url.removesuffix("/OpenADR2/Simple/2.0b")
    fleets = []
    for transport in ("pull", "push"):
        options = FleetOptions(vtn=base, vens=1, ders_per_ven=2, poll_s=1.0, report_s=1.0,
                               name_prefix=f"{transport}-", transport=transport, ramp_s=0.1,
                               validate=True, timeout_s=5.0)
        fleets.append(asyncio.create_task(run_fleet(options, stop)))
    names = ["pull-00001", "push-00001"]
    try:
        store = served.vtn.store

        async def registered() -> bool:
            vens = await store.list_vens(SERVICE)
            return sorted(v.ven_name for v in vens if v.registered) == names
        await eventually(registered)
        await asyncio.sleep(1.0)  # past their oadrRequestEvent: the event must come by push
        vens = {v.ven_name: v for v in await store.list_vens(SERVICE)}
        assert vens["push-00001"].http_pull_model is False
        assert vens["push-00001"].transport_address.endswith("/ven/push-00001")  # type: ignore[union-attr]
        assert vens["pull-00001"].http_pull_model is True
        event_id = calm_event_id(names)
        async with aiohttp.ClientSession() as session:
            api = Api(fast, session)
            dtstart = datetime.now(UTC) + timedelta(minutes=5)
            status, created = await api.call("POST", "/events", {
                "event_id": event_id, "program": "e2e", "dtstart": dtstart.isoformat(),
                "signals": simple(2, 600),
                "targets": {"ven_ids": [vens[n].ven_id for n in names]}})
            assert status == 201, created
            doc: dict[str, Any] = {}

            async def both_answered() -> bool:
                doc.update(await api.get(f"/events/{event_id}"))
                return len(doc["deliveries"]) == 2 and all(
                    d["opt_mod"] == 0 for d in doc["deliveries"])
            await eventually(both_answered, timeout=20)
        by_ven = {d["ven_id"]: d for d in doc["deliveries"]}
        for n in names:
            assert by_ven[vens[n].ven_id]["response"] == "optIn"
            assert by_ven[vens[n].ven_id]["delivered_mod"] == 0
        stop.set()
        pull, push = [await f for f in fleets]
        assert push.received["oadrDistributeEvent"] >= 1 and push.pushed >= 2
        assert push.sent["oadrPoll"] == 0  # it never polled: the event was pushed
        assert pull.sent["oadrPoll"] > 0 and pull.pushed == 0
        # (a VEN may answer twice when two distributes cross its first answer)
        assert push.opt_ins >= 1 and pull.opt_ins >= 1
        assert not push.server_errors and not pull.server_errors
    finally:
        stop.set()
        await asyncio.gather(*fleets, return_exceptions=True)
        await served.stop()


def test_ven_sim_cli_refuses_push_it_cannot_do() -> None:
    from click.testing import CliRunner

    from ven_sim.cli import main

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["run", "--vens", "1", "--quiet", "--duration",
                                           "1s", "--vtn", "http://127.0.0.1:1", *args])
        assert result.exit_code != 0
        return result.output

    assert "openleadr's client has no push" in run("--client", "openleadr",
                                                   "--transport", "push")
    assert "--push-listen" in run("--transport", "push", "--push-listen", "localhost")
    assert "'carrier'" in run("--transport", "carrier")
