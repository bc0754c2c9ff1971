"""The machine's ceiling for the HTTP benchmarks: an aiohttp handler that reads the
request body and returns a fixed 200 reply (a pre-encoded OpenADR reply of the right
type, so the load generator's checks pass). Same aiohttp runner options and event loop
as ``vtn serve``; ``--workers N`` forks N processes sharing the port (SO_REUSEPORT).

    python bench/trivial_server.py --port 8090 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web  # noqa: E402

from vtn.codec import encode  # noqa: E402
from vtn.codec import messages as m  # noqa: E402
from vtn.server import use_uvloop  # noqa: E402


def replies() -> dict[str, bytes]:
    ok = m.EiResponse(200, "OK", "bench")
    return {
        "OadrPoll": encode(m.Response(ok, ven_id="trivial-ven")),
        "EiReport": encode(m.UpdatedReport(ok, ven_id="trivial-ven")),
        "EiRegisterParty": encode(
            m.CreatedPartyRegistration(ok, "trivial-vtn", "reg-1", "trivial-ven")
        ),
    }


async def serve(port: int, reuse_port: bool) -> None:
    bodies = replies()

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(
            body=bodies[request.match_info["service"]], content_type="application/xml"
        )

    app = web.Application()
    app.router.add_post("/OpenADR2/Simple/2.0b/{service}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_port=reuse_port or None, backlog=1024)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def _worker(port: int) -> None:
    use_uvloop()
    asyncio.run(serve(port, True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    use_uvloop()  # the same event loop as vtn serve
    if args.workers <= 1:
        asyncio.run(serve(args.port, False))
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(args.port,)) for _ in range(args.workers)]
    for p in procs:
        p.start()

    def forward(signum: int, _frame: object) -> None:
        for p in procs:
            if p.pid is not None and p.is_alive():
                p.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.join()


if __name__ == "__main__":
    main()
