"""Signed oadrPoll round-trips per second: our VTN vs openleadr 0.5.36's OpenADRServer.

Both servers run in their own process over mutual TLS (openleadr only checks signatures
on TLS connections), with the same development PKI; the VEN is provisioned with its
certificate fingerprint and registered with oadrXmlSignature=true. The same load
generator (aiohttp, ``--concurrency`` requests in flight, a fixed number of requests)
signs each poll just before sending it (openleadr refuses ReplayProtect timestamps
older than 5 s) and counts replies that are HTTP 200 and signed.

    PYTHONPATH=. python bench/signature_bench.py --requests 3000 --openleadr-requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vtn.codec import decode, encode  # noqa: E402
from vtn.codec import messages as m  # noqa: E402
from vtn.security import certs  # noqa: E402
from vtn.security.signatures import Signer, verify  # noqa: E402

VEN_ID = "bench-ven"
XML = {"Content-Type": "application/xml"}

OPENLEADR_SERVER = """
import asyncio, logging, sys
from openleadr import OpenADRServer
logging.getLogger("openleadr").setLevel(logging.CRITICAL)
d, port, fp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def ven_lookup(ven_id):
    return {"ven_id": ven_id, "ven_name": "bench", "fingerprint": fp, "registration_id": "reg-1"}
async def main():
    server = OpenADRServer(
        vtn_id="bench-vtn", cert=f"{d}/vtn.pem", key=f"{d}/vtn.key", http_cert=f"{d}/vtn.pem",
        http_key=f"{d}/vtn.key", http_ca_file=f"{d}/ca.pem", http_port=port,
        http_host="127.0.0.1", ven_lookup=ven_lookup, show_fingerprint=False,
        show_server_cert_domain=False,
    )
    await server.run()
    await asyncio.Event().wait()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_ssl(d: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    ctx.load_cert_chain(str(d / "ven-bench.pem"), str(d / "ven-bench.key"))
    return ctx


async def wait_up(url: str, ctx: ssl.SSLContext, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError("server process exited")
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
                async with s.post(url, data=b"<x/>", headers=XML):
                    return
        except aiohttp.ClientError:
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not come up")


async def load(
    url: str, ctx: ssl.SSLContext, signer: Signer, vtn_fp: str, requests: int, concurrency: int
) -> tuple[float, int]:
    """Fire ``requests`` signed polls with ``concurrency`` in flight; (seconds, failures)."""
    poll = encode(m.Poll(ven_id=VEN_ID))
    failures = 0
    left = requests
    connector = aiohttp.TCPConnector(ssl=ctx, limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal left, failures
            while left > 0:
                left -= 1
                async with session.post(url, data=signer.sign(poll), headers=XML) as r:
                    body = await r.read()
                    if r.status != 200 or b"SignatureValue" not in body:
                        failures += 1

        # warm up and check one reply properly
        async with session.post(url, data=signer.sign(poll), headers=XML) as r:
            verify(await r.read(), vtn_fp)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0, failures


def start_ours(d: Path, port: int, fp: str) -> subprocess.Popen[bytes]:
    cfg = d / "vtn.toml"
    cfg.write_text(textwrap.dedent(f"""
        data_dir = "{d / 'data'}"
        [http]
        port = {port}
        [registration]
        poll_freq_s = 10.0
        [tls]
        enabled = true
        cert_file = "{d / 'vtn.pem'}"
        key_file = "{d / 'vtn.key'}"
        client_ca_file = "{d / 'ca.pem'}"
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    vtn = [sys.executable, "-c", "from vtn.cli import main; main()"]
    subprocess.run(
        [*vtn, "vens", "add", "--config", str(cfg), "--name", "bench", "--ven-id", VEN_ID,
         "--fingerprint", fp], check=True, env=env, capture_output=True,
    )
    return subprocess.Popen([*vtn, "serve", "--config", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_openleadr(d: Path, port: int, fp: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", OPENLEADR_SERVER, str(d), str(port), fp],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def register_ours(url: str, ctx: ssl.SSLContext, signer: Signer) -> None:
    msg = m.CreatePartyRegistration(
        request_id="r1", ven_name="bench", ven_id=VEN_ID, xml_signature=True
    )
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        async with s.post(url, data=signer.sign(encode(msg)), headers=XML) as r:
            reply = decode(await r.read())
            assert reply.response.code == 200, reply  # type: ignore[attr-defined]


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        _, vtn_cert = certs.init(d, args.key_type)
        ven = certs.issue_ven(d, "bench", args.key_type)
        signer = Signer.from_files(ven.cert_path, ven.key_path)
        ctx = client_ssl(d)
        results = []
        for name, n in (("oadr-vtn", args.requests), ("openleadr", args.openleadr_requests)):
            if n <= 0:
                continue
            port = free_port()
            base = f"https://localhost:{port}/OpenADR2/Simple/2.0b"
            if name == "oadr-vtn":
                proc = start_ours(d, port, ven.fingerprint)
            else:
                proc = start_openleadr(d, port, ven.fingerprint)
            try:
                await wait_up(f"{base}/OadrPoll", ctx, proc)
                if name == "oadr-vtn":
                    await register_ours(f"{base}/EiRegisterParty", ctx, signer)
                seconds, failures = await load(
                    f"{base}/OadrPoll", ctx, signer, vtn_cert.fingerprint, n, args.concurrency
                )
            finally:
                proc.terminate()
                proc.wait(10)
            results.append((name, n, seconds, failures))
            print(f"{name:10} {n:6d} signed polls in {seconds:7.2f} s = {n / seconds:8.1f}/s "
                  f"({failures} failures)", flush=True)
        print(f"\nkey type {args.key_type}, concurrency {args.concurrency}, "
              f"{os.cpu_count()} CPUs, mutual TLS, client signs each poll just before sending")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--openleadr-requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--key-type", choices=["ecdsa", "rsa"], default="ecdsa")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
