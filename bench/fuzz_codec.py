"""Mutation fuzzer for the codec and the protocol engine (no sockets).

Valid OpenADR messages are mutated (byte flips, inserts, deletions, duplicated and
spliced ranges, truncation, swapped tags and namespaces, deep nesting, entity
references) and fed to ``decode`` and to ``Engine.handle`` over a real SQLite store. The
only acceptable outcomes are a message, ``CodecError`` (from decode) or a reply with a
status below 500 (from the engine); anything else is printed with its input.

    PYTHONPATH=. python bench/fuzz_codec.py --count 1000000 [--seed 1] [--engine-every 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.oadr import NOW, metadata, status_payload, update  # noqa: E402
from vtn.app import Vtn  # noqa: E402
from vtn.codec import CodecError, decode, encode  # noqa: E402
from vtn.codec import messages as m  # noqa: E402
from vtn.config import load_config  # noqa: E402
from vtn.services.dispatch import SERVICES  # noqa: E402

VEN = "fuzz-ven"


def seeds() -> list[bytes]:
    messages: list[m.Message] = [
        m.Poll(ven_id=VEN),
        m.QueryRegistration(request_id="q1"),
        m.CreatePartyRegistration(request_id="r1", ven_name="fuzz", ven_id=VEN),
        m.CancelPartyRegistration(request_id="c1", registration_id="reg", ven_id=VEN),
        m.RequestEvent(request_id="e1", ven_id=VEN),
        metadata(VEN, {"boiler-1": "mrid-1", "pv-1": None}),
        update(VEN, "rr-1", "status-spec", [status_payload("boiler-1-status")], NOW),
        m.Response(m.EiResponse(200, "OK", "x"), ven_id=VEN),
    ]
    return [encode(msg) for msg in messages]


TOKENS = [
    b"<", b">", b"/>", b"</", b"&amp;", b"&lt;", b"&#0;", b"&#xD800;", b"&foo;", b"<!--",
    b"-->", b"<![CDATA[", b"]]>", b"<?pi?>", b"\x00", b"\xff", b"\xc3\x28", b"\xf0\x9f\x98",
    b'xmlns="urn:x"', b"xmlns:ei=\"urn:y\"", b"<!DOCTYPE x>", b"ei:", b"oadr:", b"1e309",
    b"-0", b"NaN", b"P1Y2M3DT4H", b"9999-99-99T99:99:99Z", b" " * 64, b"\"", b"'",
]


def mutate(rng: random.Random, corpus: list[bytes]) -> bytes:
    data = bytearray(rng.choice(corpus))
    for _ in range(rng.randint(1, 4)):
        n = len(data)
        op = rng.randrange(9)
        i = rng.randrange(n + 1)
        j = min(n, i + rng.randint(0, 64))
        if op == 0 and n:
            data[min(i, n - 1)] = rng.randrange(256)
        elif op == 1:
            data[i:i] = rng.choice(TOKENS)
        elif op == 2:
            del data[i:j]
        elif op == 3:
            data[i:i] = data[i:j] * rng.randint(1, 8)
        elif op == 4:
            del data[i:]
        elif op == 5:
            other = rng.choice(corpus)
            k = rng.randrange(len(other) + 1)
            data[i:] = other[k:]
        elif op == 6:
            data = bytearray(bytes(data).replace(b"oadr:oadrPoll", b"oadr:oadrCreateOpt", 2))
        elif op == 7:
            data = bytearray(
                bytes(data).replace(b"energyinterop/201110", b"energyinterop/201111", 1)
            )
        else:
            depth = rng.choice((10, 300, 5000))
            data[i:i] = b"<a>" * depth + b"</a>" * depth
    return bytes(data)


async def run(count: int, seed: int, engine_every: int) -> int:
    rng = random.Random(seed)
    corpus = seeds()
    services = list(SERVICES)
    errors = 0
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(None, data_dir=Path(tmp))
        config.registration.open_enrollment = True
        vtn = Vtn(config, run_jobs=False)
        await vtn.start()
        try:
            t0 = time.perf_counter()
            for n in range(1, count + 1):
                body = mutate(rng, corpus)
                decoded = False
                try:
                    decode(body)
                    decoded = True
                except CodecError:
                    pass
                except Exception:
                    errors += 1
                    print(f"decode: {body!r}\n{traceback.format_exc()}", flush=True)
                if decoded or n % engine_every == 0:
                    try:
                        reply = await vtn.engine.handle(rng.choice(services), body)
                        if reply.status >= 500:
                            raise AssertionError(f"status {reply.status}: {reply.body[:200]!r}")
                    except Exception:
                        errors += 1
                        print(f"engine: {body!r}\n{traceback.format_exc()}", flush=True)
                if n % 100_000 == 0:
                    rate = n / (time.perf_counter() - t0)
                    print(f"{n} inputs, {errors} unhandled, {rate:.0f}/s", flush=True)
        finally:
            await vtn.stop()
    print(f"done: {count} inputs, {errors} unhandled exceptions")
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engine-every", type=int, default=10)
    args = parser.parse_args()
    sys.exit(1 if asyncio.run(run(args.count, args.seed, args.engine_every)) else 0)


if __name__ == "__main__":
    main()
