"""Other VENs' polls while one VEN loops 2 MB oadrRegisterReports (issue #13, finding 7).

    .venv/bin/python bench/large_message_bench.py [--baseline DIR] [--duration 10]

Starts ``vtn serve`` (this checkout, and DIR's checkout with its .venv for A/B) on
loopback, registers two VENs (open enrollment), then for ``--duration`` seconds VEN B
polls back to back on one keep-alive connection, first alone, then while VEN A sends
oadrRegisterReports of 900 resources (1,800 descriptions, ~2 MB) in a loop on another
connection. Prints B's poll p50/p99 and count, and A's reports per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.oadr import metadata  # noqa: E402
from ven_sim.lean import LeanClient  # noqa: E402
from vtn.codec import decode, encode  # noqa: E402
from vtn.codec import messages as m  # noqa: E402

OADR = "/OpenADR2/Simple/2.0b"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(root: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cfg = tmp / "vtn.toml"
    cfg.write_text(textwrap.dedent(f"""
        data_dir = "{tmp / 'data'}"
        [http]
        port = {port}
        [registration]
        open_enrollment = true
    """))
    python = sys.executable if root == ROOT else str(root / ".venv/bin/python")
    proc = subprocess.Popen(
        [python, "-c", "from vtn.cli import main; main()", "serve", "--config", str(cfg)],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return proc, port


async def register(c: LeanClient, name: str) -> str:
    for _ in range(100):
        try:
            _, body = await c.post(f"{OADR}/EiRegisterParty", encode(
                m.CreatePartyRegistration(request_id="r", ven_name=name)))
            ven_id = decode(body).ven_id  # type: ignore[attr-defined]
            while not isinstance(decode((await c.post(
                    f"{OADR}/OadrPoll", encode(m.Poll(ven_id=ven_id))))[1]), m.Response):
                pass  # drain the outbox
            return ven_id  # type: ignore[no-any-return]
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError("VTN did not come up")


async def polls(c: LeanClient, ven_id: str, until: float) -> list[float]:
    body, out = encode(m.Poll(ven_id=ven_id)), []
    while time.perf_counter() < until:
        t = time.perf_counter()
        await c.post(f"{OADR}/OadrPoll", body)
        out.append((time.perf_counter() - t) * 1000)
    return out


async def large(c: LeanClient, body: bytes, until: float) -> int:
    n = 0
    while time.perf_counter() < until:
        status, _ = await c.post(f"{OADR}/EiReport", body)
        assert status == 200
        n += 1
    return n


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100)[q - 1] if len(xs) > 2 else float("nan")


async def measure(port: int, duration: float) -> dict[str, float]:
    a = LeanClient(f"http://127.0.0.1:{port}", limit=1, timeout_s=60)
    b = LeanClient(f"http://127.0.0.1:{port}", limit=1, timeout_s=60)
    try:
        ven_a, ven_b = await register(a, "ven-large"), await register(b, "ven-polls")
        big = encode(metadata(ven_a, {f"r{i}": "Water_Heater" for i in range(900)}))
        alone = await polls(b, ven_b, time.perf_counter() + duration)
        until = time.perf_counter() + duration
        loaded, reports = await asyncio.gather(polls(b, ven_b, until), large(a, big, until))
    finally:
        await a.close()
        await b.close()
    return {"body_mb": len(big) / 1e6, "alone_p50_ms": statistics.median(alone),
            "alone_p99_ms": pct(alone, 99), "alone_n": len(alone),
            "loaded_p50_ms": statistics.median(loaded), "loaded_p99_ms": pct(loaded, 99),
            "loaded_n": len(loaded), "large_per_s": reports / duration}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--baseline", type=Path, default=None)
    args = ap.parse_args()
    roots = [("this checkout", ROOT)] + ([("baseline", args.baseline)] if args.baseline else [])
    for name, root in roots:
        with tempfile.TemporaryDirectory() as tmp:
            proc, port = start(root, Path(tmp))
            try:
                r = asyncio.run(measure(port, args.duration))
            finally:
                proc.terminate()
                proc.wait(15)
        print(f"{name:14} body {r['body_mb']:.1f} MB | polls alone p50 {r['alone_p50_ms']:.2f} "
              f"p99 {r['alone_p99_ms']:.2f} ms (n={r['alone_n']}) | with large reports p50 "
              f"{r['loaded_p50_ms']:.2f} p99 {r['loaded_p99_ms']:.2f} ms (n={r['loaded_n']}),"
              f" {r['large_per_s']:.1f} large/s", flush=True)


if __name__ == "__main__":
    main()
