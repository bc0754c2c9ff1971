"""Liveness at scale on the embedded store: sweep time over 1M DERs, and polls write nothing.

    .venv/bin/python -m bench.liveness_bench [--vens 250000 --ders-per-ven 4] [--db PATH]

Builds (or reuses, ``--db``) a SQLite store with ``--vens`` registered, online VENs of
``--ders-per-ven`` DERs each (default 250k x 4 = 1M DERs; rows written straight with SQL
from a model-made template), then, through the VTN's own code (``vtn.liveness.sweep``
= contact flush + ``store.sweep_liveness``, and ``Engine.handle`` for polls):

1. steady sweep: every VEN was seen within its poll period; nothing changes (the sweep
   that runs every ``liveness.sweep_interval_s`` in normal operation);
2. 1 % silent: 1 % of the VENs were last seen 4 poll periods ago and go stale (their
   DERs with them), one log entry each;
3. all silent (after the VTN was down longer than 3 poll periods): every VEN goes stale
   in one sweep;
4. polls write nothing: ``--polls`` oadrPoll messages of distinct VENs through the
   engine; SQLite ``total_changes`` of the store's connection (every row inserted,
   updated or deleted) before and after, and WAL frames (``PRAGMA wal_checkpoint``
   reports the WAL size), then one contact flush: the coalesced ``last_seen`` update,
   one row per VEN, in one transaction.

Writes bench/results/liveness.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from registry.models import Der, DeviceClass, DeviceType, Liveness, Location, Ven  # noqa: E402
from registry.sqlite import SqliteStore  # noqa: E402
from registry.sqlite.rows import DER_COLUMNS, der_row  # noqa: E402
from vtn import liveness  # noqa: E402
from vtn.app import Vtn  # noqa: E402
from vtn.codec import encode  # noqa: E402
from vtn.codec import messages as m  # noqa: E402
from vtn.config import load_config  # noqa: E402

POLL_S = 60.0
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def ven_id(i: int) -> str:
    return f"ven-{i:07d}"


def generate(path: Path, vens: int, per_ven: int) -> float:
    """Rows straight into the store's schema, from one VEN and one DER model template."""
    asyncio.run(_open_close(path))
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    vdoc = Ven(ven_id="VENID", ven_name="VENNAME", registered=True, poll_freq_s=POLL_S,
               registration_id="REGID", aggregator_id="agg-00", account_id="ACCT",
               liveness=Liveness.ONLINE, created_at=T0, updated_at=T0).model_dump_json()
    der = Der(
        device_id="DEVICEID", ven_id="VENID", resource_id="RESID", device_name="DEVNAME",
        aggregator_id="agg-00", account_id="ACCT", device_class=DeviceClass.PV,
        device_type=DeviceType.GENERATION, location=Location(lat=52.5, lon=13.4),
        max_capacity=5000.0, available_capacity=2500.0, liveness=Liveness.ONLINE,
        updated_at=T0,
    )
    drow = list(der_row(der))
    ddoc = drow[-1]
    names = [c.strip() for c in DER_COLUMNS.split(",")]
    rnd = random.Random(1)
    t = time.perf_counter()
    seen = T0.timestamp()
    chunk = 10_000
    for start in range(0, vens, chunk):
        vrows, drows = [], []
        for i in range(start, min(vens, start + chunk)):
            vid = ven_id(i)
            agg = f"agg-{i % 20:02d}"
            vrows.append((
                vid, f"osb-{i:07d}", None, f"reg-{i}", agg, f"acct-{i}", 1, POLL_S, "online",
                seen - rnd.uniform(0, POLL_S), None,
                vdoc.replace("VENID", vid).replace("VENNAME", f"osb-{i:07d}")
                .replace("REGID", f"reg-{i}").replace("ACCT", f"acct-{i}")
                .replace('"agg-00"', f'"{agg}"'),
            ))
            for k in range(per_ven):
                did = f"der-{i:07d}-{k}"
                row = list(drow)
                row[0], row[1], row[2], row[3] = did, vid, f"res-{k}", f"pv-{i}-{k}"
                row[names.index("aggregator_id")] = agg
                row[names.index("account_id")] = f"acct-{i}"
                row[-1] = (ddoc.replace("DEVICEID", did).replace("VENID", vid)
                           .replace("RESID", f"res-{k}").replace("DEVNAME", f"pv-{i}-{k}")
                           .replace("ACCT", f"acct-{i}").replace('"agg-00"', f'"{agg}"'))
                drows.append(tuple(row))
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO vens (ven_id, ven_name, fingerprint, registration_id, aggregator_id, "
            "account_id, registered, poll_freq_s, liveness, last_seen, offline_since, doc) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", vrows)
        db.executemany(
            f"INSERT INTO ders ({DER_COLUMNS}) VALUES ({','.join('?' * len(names))})", drows)
        db.execute("COMMIT")
        print(f"\r  {min(vens, start + chunk):,} VENs, {min(vens, start + chunk) * per_ven:,} "
              "DERs", end="", file=sys.stderr, flush=True)
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print(file=sys.stderr)
    return time.perf_counter() - t


async def _open_close(path: Path) -> None:
    s = SqliteStore(path)
    await s.open()
    await s.close()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def reset(vtn: Vtn, seen_ago_max: float, silent_share: float = 0.0, silent_ago: float = 0.0
          ) -> None:
    """Everyone online, last seen within ``seen_ago_max`` s; a share silent for longer."""
    db = vtn.store.db  # type: ignore[attr-defined]
    t = T0.timestamp()
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE vens SET liveness='online', offline_since=NULL, "
               "last_seen=? - (abs(random()) % 1000) / 1000.0 * ?", (t, seen_ago_max))
    db.execute("UPDATE ders SET liveness='online' WHERE liveness!='online'")
    if silent_share:
        every = round(1 / silent_share)
        db.execute("UPDATE vens SET last_seen=? WHERE rowid % ? = 0", (t - silent_ago, every))
    db.execute("COMMIT")


async def ticker(done: asyncio.Event) -> float:
    """The longest gap between two turns of this task until ``done``."""
    longest = 0.0
    while not done.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0)
        longest = max(longest, time.perf_counter() - t)
    return longest


async def time_sweep(vtn: Vtn, repeats: int, **kw: Any) -> dict[str, Any]:
    """Sweep time, and the longest the event loop was held (a ticker task measures the
    gaps between its turns while the sweep runs: requests wait that long)."""
    times, blocks, changed, ders = [], [], 0, 0
    for _ in range(repeats):
        reset(vtn, **kw)
        done = asyncio.Event()
        task = asyncio.create_task(ticker(done))
        await asyncio.sleep(0)
        t = time.perf_counter()
        changes = await liveness.sweep(vtn.ctx)
        times.append(time.perf_counter() - t)
        done.set()
        blocks.append(await task)
        changed, ders = len(changes), sum(c.ders for c in changes)
    return {"seconds_median": round(statistics.median(times), 3),
            "seconds": [round(x, 3) for x in times],
            "longest_loop_block_s": round(max(blocks), 3),
            "vens_changed": changed, "ders_changed": ders}


async def measure(path: Path, polls: int, repeats: int) -> dict[str, Any]:
    cfg = load_config(None, data_dir=path.parent, **{"store.url": f"sqlite:///{path}"})
    clock = Clock(T0)
    vtn = Vtn(cfg, clock=clock, run_jobs=False)
    await vtn.start()
    db = vtn.store.db  # type: ignore[attr-defined]
    counts = db.execute("SELECT (SELECT count(*) FROM vens), (SELECT count(*) FROM ders)"
                        ).fetchone()
    stale_s = POLL_S * cfg.liveness.stale_after_polls
    out: dict[str, Any] = {"vens": counts[0], "ders": counts[1],
                           "stale_after_s": stale_s,
                           "offline_after_s": POLL_S * cfg.liveness.offline_after_polls}
    print("steady sweep ...", file=sys.stderr, flush=True)
    out["sweep_steady"] = await time_sweep(vtn, repeats, seen_ago_max=POLL_S)
    print("1 % silent ...", file=sys.stderr, flush=True)
    out["sweep_1pct_silent"] = await time_sweep(
        vtn, repeats, seen_ago_max=POLL_S, silent_share=0.01, silent_ago=stale_s + POLL_S)
    print("all silent ...", file=sys.stderr, flush=True)
    out["sweep_all_silent"] = await time_sweep(vtn, 1, seen_ago_max=0.0, silent_share=1.0,
                                               silent_ago=stale_s + POLL_S)

    print("polls ...", file=sys.stderr, flush=True)
    reset(vtn, seen_ago_max=POLL_S)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rnd = random.Random(2)
    ids = rnd.sample(range(counts[0]), min(polls, counts[0]))
    bodies = [encode(m.Poll(ven_id=ven_id(i))) for i in ids]
    clock.now = T0 + timedelta(seconds=1)
    changes0 = db.total_changes
    wal0 = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    t = time.perf_counter()
    ok = 0
    for body in bodies:
        reply = await vtn.engine.handle("OadrPoll", body)
        ok += reply.status == 200 and b"<ei:responseCode>200<" in reply.body
    poll_s = time.perf_counter() - t
    changes1 = db.total_changes
    wal1 = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    pending = len(vtn.ctx.contacts)
    t = time.perf_counter()
    flushed = await liveness.flush_contacts(vtn.ctx)
    flush_s = time.perf_counter() - t
    changes2 = db.total_changes
    out["polls"] = {
        "polls": len(bodies), "ok": ok, "per_s": round(len(bodies) / poll_s),
        "us_per_poll": round(1e6 * poll_s / len(bodies), 1),
        "sqlite_total_changes_during_polls": changes1 - changes0,
        "wal_frames_before_after": [wal0[1], wal1[1]],
        "contacts_pending_after_polls": pending,
        "flush_rows": flushed,
        "sqlite_total_changes_by_flush": changes2 - changes1,
        "flush_seconds": round(flush_s, 3),
    }
    await vtn.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vens", type=int, default=250_000)
    ap.add_argument("--ders-per-ven", type=int, default=4)
    ap.add_argument("--db", type=Path, default=None, help="Keep / reuse the store here.")
    ap.add_argument("--polls", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/liveness.json")
    args = ap.parse_args()
    tmp = None
    path = args.db
    if path is None:
        tmp = tempfile.mkdtemp()
        path = Path(tmp) / "liveness.sqlite3"
    gen_s = None
    if not path.exists():
        print(f"generating {args.vens:,} VENs x {args.ders_per_ven} DERs in {path}",
              file=sys.stderr)
        gen_s = round(generate(path, args.vens, args.ders_per_ven), 1)
    result = asyncio.run(measure(path, args.polls, args.repeats))
    result = {
        "command": "python -m bench.liveness_bench " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "generate_seconds": gen_s,
        "db_mb": round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
                       / 2**20, 1),
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if tmp is not None:
        for p in Path(tmp).iterdir():
            p.unlink()
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
