"""openleadr 0.5.36's OpenADRServer as a benchmark target (bench/http_bench.py).

Plain HTTP, no signatures. It accepts every registration (the venID is derived from the
oadrVenName so the bench knows it), keeps registered VENs in a dict that its
``ven_lookup`` reads (so polls and reports of registered VENs are accepted, unknown ones
get oadrRequestReregistration), and accepts every report. Polls return its empty
oadrResponse (nothing queued). openleadr's own logger is silenced.

    python bench/openleadr_server.py --port 8091
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from openleadr import OpenADRServer

VENS: dict[str, dict[str, str]] = {}


def ven_lookup(ven_id: str) -> dict[str, str] | None:
    return VENS.get(ven_id)


def on_create_party_registration(payload: dict) -> tuple[str, str]:
    ven_id = "ol-" + payload["ven_name"]
    registration_id = "reg-" + payload["ven_name"]
    VENS[ven_id] = {
        "ven_id": ven_id, "ven_name": payload["ven_name"], "registration_id": registration_id,
    }
    return ven_id, registration_id


async def on_update_report(report: dict) -> None:
    return None


async def main(port: int) -> None:
    logging.getLogger("openleadr").setLevel(logging.CRITICAL)
    server = OpenADRServer(
        vtn_id="openleadr-vtn", http_port=port, http_host="127.0.0.1", ven_lookup=ven_lookup,
    )
    server.add_handler("on_create_party_registration", on_create_party_registration)
    server.add_handler("on_update_report", on_update_report)
    await server.run()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8091)
    asyncio.run(main(ap.parse_args().port))
