"""Protocol engine throughput on the embedded store (no HTTP), one command.

    python bench/engine_bench.py [--n 5000]

Measures oadrPoll (empty), oadrUpdateReport (4 usage points) and
oadrCreatePartyRegistration through Engine.handle over a real SQLite file, and as a
baseline in the same run the codec alone (decode + encode of the same messages), so the
ratio shows what the store and service logic cost. Writes bench/results/engine.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.oadr import call, metadata, register  # noqa: E402
from vtn.app import Vtn  # noqa: E402
from vtn.codec import decode, encode  # noqa: E402
from vtn.codec import messages as m  # noqa: E402
from vtn.config import load_config  # noqa: E402


async def rate(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for i in range(n):
            await fn(i)
        best = max(best, n / (time.perf_counter() - t))
    return best


async def main(n: int) -> dict[str, dict[str, float]]:
    cfg = load_config(None, data_dir=tempfile.mkdtemp())
    cfg.registration.open_enrollment = True
    vtn = Vtn(cfg, run_jobs=False)
    await vtn.start()
    reg = await register(vtn)
    ven_id = reg.ven_id or ""
    rep = await call(vtn, "EiReport", metadata(ven_id, {f"r{i}": "PV" for i in range(4)}))
    assert isinstance(rep, m.RegisteredReport)
    await call(vtn, "OadrPoll", m.Poll(ven_id=ven_id))
    rr = next(
        r.report_request_id for r in rep.report_requests if r.report_specifier_id == "usage-spec"
    )
    from tests.oadr import update

    poll = encode(m.Poll(ven_id=ven_id))
    upd = encode(
        update(
            ven_id,
            rr,
            "usage-spec",
            [m.ReportPayload(r_id=f"r{i}-power", value=float(i)) for i in range(4)],
        )
    )
    empty = m.Response(m.EiResponse(200, "OK", ""), ven_id=ven_id)
    updated = m.UpdatedReport(m.EiResponse(200, "OK", "upd-1"), ven_id=ven_id)

    def registration(i: int) -> bytes:
        return encode(
            m.CreatePartyRegistration(request_id=f"r{i}", ven_name=f"bench-{i}-{time.time_ns()}")
        )

    created = m.CreatedPartyRegistration(m.EiResponse(200, "OK", "r"), "vtn", "reg", "ven")

    async def codec(body: bytes, reply: m.Message) -> None:
        decode(body)
        encode(reply)

    out: dict[str, dict[str, float]] = {}
    cases = {
        "oadrPoll (empty)": (
            lambda i: vtn.engine.handle("OadrPoll", poll),
            lambda i: codec(poll, empty),
            n,
        ),
        "oadrUpdateReport (4 points)": (
            lambda i: vtn.engine.handle("EiReport", upd),
            lambda i: codec(upd, updated),
            n // 2,
        ),
        "oadrCreatePartyRegistration": (
            lambda i: vtn.engine.handle("EiRegisterParty", registration(i)),
            lambda i: codec(registration(i), created),
            n // 5,
        ),
    }
    for name, (engine_fn, codec_fn, count) in cases.items():
        e = await rate(engine_fn, count)
        c = await rate(codec_fn, count)
        out[name] = {
            "engine_per_s": round(e),
            "codec_only_per_s": round(c),
            "engine_us": round(1e6 / e, 1),
            "ratio_to_codec": round(e / c, 3),
        }
    await vtn.stop()
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    results = asyncio.run(main(ap.parse_args().n))
    Path(__file__).with_name("results").mkdir(exist_ok=True)
    Path(__file__).with_name("results").joinpath("engine.json").write_text(
        json.dumps(results, indent=2)
    )
    print(f"{'message':32} {'engine/s':>10} {'us':>8} {'codec/s':>10} {'ratio':>7}")
    for name, r in results.items():
        print(
            f"{name:32} {r['engine_per_s']:>10} {r['engine_us']:>8} "
            f"{r['codec_only_per_s']:>10} {r['ratio_to_codec']:>7}"
        )
