"""What /metrics costs the poll path, A/B in one process, one command.

    .venv/bin/python bench/metrics_bench.py [--n 20000] [--rounds 7]

A registered VEN's empty oadrPoll through the engine over a real SQLite file, two ways,
interleaved round by round: ``Engine.handle`` (instrumented: two perf_counter calls and
METRICS.request) and ``Engine._handle`` (the same engine without the instrumentation).
Also the instrumentation alone (METRICS.request with its timing) per call. HTTP framing
is the same for both, so the in-process ratio is an upper bound of the HTTP one; the
HTTP A/B against main (bench/http_bench.py --baseline) on this shared machine spreads
±50 % between repeats. Writes bench/results/metrics.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.oadr import call, register  # noqa: E402
from vtn.app import Vtn  # noqa: E402
from vtn.codec import encode  # noqa: E402
from vtn.codec import messages as m  # noqa: E402
from vtn.config import load_config  # noqa: E402
from vtn.metrics import METRICS  # noqa: E402


async def per_call_us(fn, body: bytes, n: int) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    for _ in range(n):
        await fn("OadrPoll", body, None)
    return (time.perf_counter() - t) / n * 1e6


async def main(n: int, rounds: int) -> dict[str, object]:
    cfg = load_config(None, data_dir=tempfile.mkdtemp())
    cfg.registration.open_enrollment = True
    vtn = Vtn(cfg, run_jobs=False)
    await vtn.start()
    reg = await register(vtn)
    ven_id = reg.ven_id or ""
    await call(vtn, "OadrPoll", m.Poll(ven_id=ven_id))
    body = encode(m.Poll(ven_id=ven_id))
    engine = vtn.engine
    with_m, without = [], []
    for r in range(rounds):
        pair = [(engine.handle, with_m), (engine._handle, without)]
        for fn, out in pair if r % 2 == 0 else reversed(pair):
            out.append(await per_call_us(fn, body, n))
    t = time.perf_counter()
    for _ in range(n * 10):
        started = time.perf_counter()
        METRICS.request("OadrPoll", 200, time.perf_counter() - started)
    alone = (time.perf_counter() - t) / (n * 10) * 1e6
    await vtn.stop()
    a, b = statistics.median(with_m), statistics.median(without)
    return {
        "command": "python bench/metrics_bench.py " + " ".join(sys.argv[1:]),
        "poll_us_with_metrics": round(a, 2), "poll_us_without": round(b, 2),
        "ratio_with_over_without": round(a / b, 4),
        "best_with": round(min(with_m), 2), "best_without": round(min(without), 2),
        "instrumentation_alone_us": round(alone, 3),
        "rounds": rounds, "n": n,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    result = asyncio.run(main(args.n, args.rounds))
    out = Path(__file__).resolve().parent / "results" / "metrics.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
