"""openleadr's own OpenADRClient (a VEN nobody here wrote) against our VTN over real HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from openleadr import OpenADRClient

from registry.port import SERVICE
from tests.conftest import ValidatingEngine, serve
from vtn.config import Config
from vtn.services.admin import provision_ven


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


def fast(config: Config) -> Config:
    config.registration.poll_freq_s = 1
    config.reports.usage_granularity_s = 1
    config.reports.status_granularity_s = 1
    config.reports.report_back_duration_s = 1
    return config


def make_client(url: str, name: str) -> OpenADRClient:
    client = OpenADRClient(ven_name=name, vtn_url=url)
    readings = {"boiler-1": 2000.0, "heatpump-1": 1500.0}
    for resource, value in readings.items():
        client.add_report(
            callback=lambda v=value: v,
            resource_id=resource,
            measurement="power_real",
            unit="W",
            report_specifier_id=f"usage-{resource}",
            r_id=f"{resource}-power",
            sampling_rate=timedelta(seconds=1),
            report_duration=timedelta(seconds=60),
        )
    return client


async def test_openleadr_client_registers_reports_and_survives_restart(config: Config) -> None:
    fast(config)
    logging.getLogger("openleadr").setLevel(logging.ERROR)
    served = await serve(config)
    ven = await provision_ven(served.vtn.ctx, name="osb-ol-1", account_id="acc-7",
                              aggregator_id="agg-1")
    client = make_client(served.url, "osb-ol-1")
    emitted_before = ValidatingEngine.emitted
    await client.run()
    try:
        store = served.vtn.store

        async def ders_with_values() -> bool:
            ders = await store.ders_of_ven(ven.ven_id)
            return len(ders) == 2 and all(d.last_values for d in ders)

        await eventually(ders_with_values)
        ders = {d.resource_id: d for d in await store.ders_of_ven(ven.ven_id)}
        assert client.ven_id == ven.ven_id
        assert set(ders) == {"boiler-1", "heatpump-1"}
        boiler = ders["boiler-1"]
        assert boiler.account_id == "acc-7" and boiler.aggregator_id == "agg-1"
        assert boiler.liveness == "online"
        assert boiler.last_values["boiler-1-power"].value == 2000.0
        assert boiler.telemetry[0].item_kind == "powerReal"
        assert boiler.telemetry[0].units == "W"
        registered = await store.get_ven(ven.ven_id)
        assert registered is not None and registered.registered
        # the VTN's own oadrRegisterReport was delivered on poll
        assert await store.pending_count(ven.ven_id) == 0
        first_report_at = boiler.last_report_at

        # restart the VTN on the same store and port: the same client keeps working
        await served.stop()
        served = await serve(config)
        store = served.vtn.store

        async def reported_after_restart() -> bool:
            d = await store.get_der(boiler.device_id, SERVICE)
            return d is not None and d.last_report_at is not None and (
                first_report_at is None or d.last_report_at > first_report_at + timedelta(seconds=1)
            )

        await eventually(reported_after_restart)
        assert await store.count_ders(SERVICE) == 2  # nothing duplicated
        assert ValidatingEngine.emitted > emitted_before
    finally:
        await client.stop()
        await served.stop()
