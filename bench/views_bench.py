"""Cost of discovery over OpenADR: one aggregator view of 10k DERs, one command.

    python bench/views_bench.py [--ders 10000] [--reports 20]

An aggregator VEN subscribes to a status report on all DERs of its default view (plus
the aggregate rIDs), granularity and reportBackDuration 60 s. The clock is stepped
60 s at a time and the scheduler job delivers the due report; the VEN polls it. We take
process CPU time (not wall time) per delivered report, split into the scheduler's part
(claim, read the view, build and encode the oadrUpdateReport, queue it) and the poll that
hands it out, and the same for the METADATA announcement (oadrRegisterReport).

Baseline in the same run: reading the same 10k DERs through the store (find_ders pages),
the floor any status report over them has to pay. Writes bench/results/views.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from registry import views as registry_views  # noqa: E402
from registry.models import (  # noqa: E402
    Der,
    DerStatus,
    DeviceClass,
    Liveness,
    LoadControl,
    Location,
    Ven,
    VenRole,
)
from registry.port import Batch  # noqa: E402
from tests.conftest import FakeClock  # noqa: E402
from tests.oadr import call, register  # noqa: E402
from vtn.app import Vtn  # noqa: E402
from vtn.codec import decode  # noqa: E402
from vtn.codec import messages as m  # noqa: E402
from vtn.config import load_config  # noqa: E402
from vtn.services import views  # noqa: E402


def fleet(n: int, rng: random.Random) -> tuple[list[Ven], list[Der]]:
    vens, ders = [], []
    classes = list(DeviceClass)
    for v in range(n // 4):
        ven_id = f"osb-{v:06d}"
        vens.append(Ven(ven_id=ven_id, ven_name=ven_id, aggregator_id="A1", registered=True))
        for r in range(4):
            ders.append(Der(
                ven_id=ven_id, resource_id=f"res-{r}", device_name=f"{ven_id}-{r}",
                aggregator_id="A1", device_class=classes[rng.randrange(len(classes))],
                location=Location(lat=52.5 + rng.uniform(-0.2, 0.2),
                                  lon=13.4 + rng.uniform(-0.3, 0.3)),
                max_capacity=rng.uniform(500, 11000), available_capacity=rng.uniform(0, 500),
                liveness=Liveness.ONLINE,
                status=DerStatus(online=True, manual_override=False, load_control={
                    "capacity": LoadControl(current=rng.uniform(0, 5), max=5.0)}),
            ))
    return vens, ders


async def cpu(fn, *args):  # type: ignore[no-untyped-def]
    t = time.process_time()
    result = await fn(*args)
    return time.process_time() - t, result


async def main(n_ders: int, n_reports: int) -> dict[str, object]:
    rng = random.Random(1)
    cfg = load_config(None, data_dir=tempfile.mkdtemp())
    clock = FakeClock()
    vtn = Vtn(cfg, run_jobs=False, clock=clock)
    await vtn.start()
    vens, ders = fleet(n_ders, rng)
    for i in range(0, len(ders), 2000):
        await vtn.store.commit(Batch(vens=vens[i // 4:(i + 2000) // 4], ders=ders[i:i + 2000]))
    assert await vtn.store.count_ders(registry_views.aggregator_scope("A1")) == n_ders

    # announcement: registration queues the METADATA of the default view
    t = time.process_time()
    reg = await register(vtn, "agg-1", aggregator_id="A1", role=VenRole.AGGREGATOR)
    register_cpu = time.process_time() - t
    agg = reg.ven_id or ""
    t = time.process_time()
    offer = await call(vtn, "OadrPoll", m.Poll(ven_id=agg))
    offer_poll_cpu = time.process_time() - t
    assert isinstance(offer, m.RegisterReport)
    r_ids = [d.r_id for d in offer.reports[0].descriptions]
    assert len(r_ids) == n_ders + len(views.AGGREGATE_RIDS)
    created = await call(vtn, "EiReport", m.CreateReport("c1", [m.ReportRequest(
        "rr-1", "all", [m.SpecifierPayload(r) for r in r_ids],
        granularity=timedelta(seconds=60), report_back_duration=timedelta(seconds=60))], agg))
    assert isinstance(created, m.CreatedReport) and created.response.code == 200

    deliver, polls, sizes, floor = [], [], [], []
    for _ in range(n_reports):
        floor.append((await cpu(registry_views.members, vtn.store,
                                registry_views.default_view("A1")))[0])
        spent, queued = await cpu(views.tick, vtn.ctx)
        assert queued == 1
        deliver.append(spent)
        t = time.process_time()
        reply = await vtn.engine.handle("OadrPoll", b"" + _poll(agg))
        polls.append(time.process_time() - t)
        sizes.append(len(reply.body))
        msg = decode(reply.body, validate=False)
        assert isinstance(msg, m.UpdateReport)
        assert len(msg.reports[0].intervals[0].payloads) == len(r_ids)
        clock.advance(60)
    await vtn.stop()

    def med(xs: list[float]) -> float:
        return sorted(xs)[len(xs) // 2]

    per_report = med(deliver) + med(polls)
    out = {
        "ders": n_ders,
        "reports": n_reports,
        "cpu_per_report_ms": round(per_report * 1000, 1),
        "scheduler_ms": round(med(deliver) * 1000, 1),
        "poll_ms": round(med(polls) * 1000, 2),
        "per_der_us": round(per_report / n_ders * 1e6, 1),
        "report_bytes": sizes[0],
        "baseline_store_read_ms": round(med(floor) * 1000, 1),
        "ratio_to_store_read": round(per_report / med(floor), 2),
        "announcement_cpu_ms": round((register_cpu + offer_poll_cpu) * 1000, 1),
        "cpu_share_one_core_at_60s": round(per_report / 60, 4),
    }
    return out


def _poll(ven_id: str) -> bytes:
    from vtn.codec import encode

    return encode(m.Poll(ven_id=ven_id))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ders", type=int, default=10_000)
    ap.add_argument("--reports", type=int, default=20)
    args = ap.parse_args()
    result = asyncio.run(main(args.ders, args.reports))
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / "views.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
