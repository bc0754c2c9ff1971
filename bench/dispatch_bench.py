"""Group dispatch (issue #15) on a real store (no HTTP), one command.

    python bench/dispatch_bench.py [--members 10000] [--ders-per-ven 4] [--rounds 3]
                                   [--store-url mongodb://127.0.0.1:27017/bench]

A group of ``--members`` DERs (one aggregator, ``--ders-per-ven`` per VEN) is dispatched
to deliver a 4-slot kW curve. Measured, best of ``--rounds``, in the same run:

1. baseline: one plain DR event targeting the same DERs (event_manager.create_event:
   the same target resolution, one event, one delivery and one marker per VEN);
2. dispatch: create_dispatch, the request split over every member and one event per
   member VEN, all committed in one transaction ("time to events queued");
3. re-dispatch: 10 % of the VENs opt out; one pass moves their share to the others;
4. status: requested / assigned / opted-in / measured per slot over all members.

Writes bench/results/dispatch.json (sqlite) or dispatch_mongo.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from registry import groups  # noqa: E402
from registry.dispatch_manager import create_dispatch, redispatch  # noqa: E402
from registry.dispatch_status import dispatch_status  # noqa: E402
from registry.event_manager import create_event  # noqa: E402
from registry.events import DrEvent, OptType  # noqa: E402
from registry.group_dispatch import DispatchSlot, GroupDispatch, MemberState  # noqa: E402
from registry.models import Der, DeviceClass, Liveness, Ven  # noqa: E402
from registry.port import SERVICE, Batch, OptAnswer, Scope  # noqa: E402
from vtn.app import Vtn  # noqa: E402
from vtn.config import load_config  # noqa: E402

AGG = Scope("aggregator", aggregator_id="agg-1")


async def seed(vtn: Vtn, members: int, per_ven: int) -> list[str]:
    now = datetime.now(UTC)
    device_ids: list[str] = []
    vens = (members + per_ven - 1) // per_ven
    for start in range(0, vens, 1000):
        batch = Batch()
        for i in range(start, min(vens, start + 1000)):
            ven = Ven(ven_name=f"fleet-{i:06d}", registered=True, registration_id=f"reg-{i}",
                      aggregator_id="agg-1", liveness=Liveness.ONLINE, last_seen=now)
            batch.vens.append(ven)
            for r in range(min(per_ven, members - i * per_ven)):
                der = Der(ven_id=ven.ven_id, resource_id=f"res-{r}", device_name=f"d{r}",
                          aggregator_id="agg-1", device_class=DeviceClass.DHW,
                          available_capacity=1000.0 + 500 * (r % 4),
                          liveness=Liveness.ONLINE)
                batch.ders.append(der)
                device_ids.append(der.device_id)
        await vtn.store.commit(batch)
    await groups.create_group(vtn.store, "agg-1", "fleet", filters={}, actor="bench",
                              now=now)
    return device_ids


def plain_event(device_ids: list[str], start: datetime, i: int) -> DrEvent:
    return DrEvent(
        event_id=f"plain-{i}", program="bench", dtstart=start, duration_s=3600,
        signals=[{"signal_name": "LOAD_DISPATCH", "signal_type": "delta", "units": "kW",
                  "item_kind": "powerReal",
                  "intervals": [{"duration_s": 900, "value": -v} for v in (2, 4, 4, 2)]}],
        targets={"device_ids": device_ids})


def request(i: int, start: datetime, kw: float) -> GroupDispatch:
    return GroupDispatch(dispatch_id=f"gd-{i}", group="fleet", dtstart=start,
                         slots=[DispatchSlot(duration_s=900, kw=kw * f)
                                for f in (0.5, 1.0, 1.0, 0.5)])


async def best(fn, rounds: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for i in range(rounds):
        t = time.perf_counter()
        out = await fn(i)
        times.append(time.perf_counter() - t)
    return min(times), out


async def main(args: argparse.Namespace) -> dict[str, object]:
    overrides = {"store.url": args.store_url} if args.store_url else {}
    cfg = load_config(None, data_dir=tempfile.mkdtemp(), **overrides)
    vtn = Vtn(cfg, run_jobs=False)
    await vtn.start()
    try:
        t = time.perf_counter()
        device_ids = await seed(vtn, args.members, args.ders_per_ven)
        seed_s = time.perf_counter() - t
        now = datetime.now(UTC)
        start = now + timedelta(minutes=30)
        kw = args.members * 1.0  # about half of the group's capacity

        async def baseline(i: int) -> object:
            return await create_event(vtn.store, plain_event(device_ids, start, i), AGG,
                                      actor="bench", now=now)

        async def dispatch(i: int) -> object:
            return await create_dispatch(vtn.store, request(i, start, kw), AGG,
                                         actor="bench", now=now)

        base_s, _ = await best(baseline, args.rounds)
        disp_s, created = await best(dispatch, args.rounds)
        d, members = created  # type: ignore[misc]
        assigned = [m for m in members if m.state is MemberState.ASSIGNED]
        events = sorted({m.event_id for m in assigned if m.event_id})
        shares = {x.event_id: x for x in await vtn.store.dispatch_deliveries(d.dispatch_id)}
        out = events[: max(1, len(events) // 10)]
        await vtn.store.commit(Batch(opt_answers=[
            OptAnswer(e, shares[e].ven_id, OptType.OUT, 0, now) for e in out]))
        t = time.perf_counter()
        changed = await redispatch(vtn.store, d, now + timedelta(seconds=1))
        re_s = time.perf_counter() - t
        assert changed
        t = time.perf_counter()
        status = await dispatch_status(vtn.store, d.dispatch_id, SERVICE, now, 0)
        status_s = time.perf_counter() - t
        return {
            "store": "mongo" if args.store_url else "sqlite", "members": len(members),
            "assigned": len(assigned), "vens_events": len(events), "seed_s": round(seed_s, 2),
            "baseline_one_event_s": round(base_s, 3), "dispatch_s": round(disp_s, 3),
            "dispatch_vs_baseline": round(disp_s / base_s, 2),
            "redispatch_10pct_opt_out_s": round(re_s, 3),
            "redispatch_vs_baseline": round(re_s / base_s, 2),
            "status_s": round(status_s, 3),
            "slot_1_assigned_kw": status["slots"][1]["assigned_kw"],  # type: ignore[index]
            "slot_1_requested_kw": status["slots"][1]["requested_kw"],  # type: ignore[index]
        }
    finally:
        await vtn.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", type=int, default=10_000)
    p.add_argument("--ders-per-ven", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--store-url", default=None)
    a = p.parse_args()
    result = asyncio.run(main(a))
    print(json.dumps(result, indent=2))
    name = "dispatch_mongo.json" if a.store_url else "dispatch.json"
    out = Path(__file__).resolve().parent / "results" / name
    out.write_text(json.dumps(result, indent=2) + "\n")
