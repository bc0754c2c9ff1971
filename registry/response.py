"""Measured response of a DR event (issue #14), from the telemetry history.

For each DER an event targets (its deliveries, as the caller's scope sees them):

- baseline_w: the DER's mean load over ``[dtstart - baseline_s, dtstart)``;
- event_w: its mean load over the active period ``[dtstart, min(end, now))``;
- delivered_w = baseline_w - event_w (positive: load reduced).

A DER's load is the sum over its load rIDs (reportType usage/demand, in W) of each rID's
mean over the window. The history holds (sum, count) per DER rID and time bucket
(``[reports] history_bucket_s``, by the interval dtstart the VEN reported); a bucket
belongs to the window its start lies in, so windows are resolved to one bucket.

No telemetry in the baseline window (e.g. the event was created less than baseline_s
before dtstart, or the DER was silent): the baseline falls back to the DER's last
recorded bucket before dtstart, up to ``LOOKBACK`` earlier (``baseline_source``
"before"); with none either, the DER has no baseline and no delivered figure. Per-VEN
and total figures add up the DERs that have both figures (``ders_measured``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from registry.events import EventStatus
from registry.port import Scope, Store, TelemetryBucket

LOOKBACK = timedelta(days=7)


class ResponseNotFound(LookupError):
    pass


def mean_load(buckets: list[TelemetryBucket]) -> tuple[float | None, int]:
    per_rid: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for b in buckets:
        acc = per_rid[b.r_id]
        acc[0] += b.sum_w
        acc[1] += b.count
    if not per_rid:
        return None, 0
    return sum(s / n for s, n in per_rid.values() if n), int(sum(n for _, n in per_rid.values()))


def latest_buckets(buckets: list[TelemetryBucket]) -> list[TelemetryBucket]:
    """The last bucket of each rID."""
    last: dict[str, TelemetryBucket] = {}
    for b in buckets:
        if b.r_id not in last or b.bucket > last[b.r_id].bucket:
            last[b.r_id] = b
    return list(last.values())


def _figures(baseline: float | None, event: float | None, samples: int) -> dict[str, Any]:
    delivered = baseline - event if baseline is not None and event is not None else None
    return {"baseline_w": baseline, "event_w": event, "delivered_w": delivered,
            "samples": samples}


def _add(into: dict[str, Any], der: dict[str, Any]) -> None:
    into["samples"] += der["samples"]
    if der["delivered_w"] is None:
        return
    into["ders_measured"] += 1
    for key in ("baseline_w", "event_w", "delivered_w"):
        into[key] = (into[key] or 0.0) + der[key]


async def measured_response(store: Store, event_id: str, scope: Scope, now: datetime
                            ) -> dict[str, Any]:
    """Per-DER, per-VEN and total {baseline_w, event_w, delivered_w, samples}."""
    event = await store.get_event(event_id, scope)
    if event is None:
        raise ResponseNotFound(event_id)
    deliveries = await store.deliveries_of_event(event_id, scope)
    ven_of = {dev: d.ven_id for d in deliveries for dev in d.device_ids}
    devices = sorted(ven_of)
    start = event.dtstart
    base_start = start - timedelta(seconds=event.baseline_s)
    end = event.end
    if event.cancelled_at is not None:
        end = min(end, event.cancelled_at) if end else event.cancelled_at
    until = min(end, now) if end is not None else now
    history = await store.telemetry_history(devices, base_start - LOOKBACK, max(until, start))
    by_der: dict[str, list[TelemetryBucket]] = defaultdict(list)
    for b in history:
        by_der[b.device_id].append(b)
    ders = []
    for dev in devices:
        buckets = by_der.get(dev, [])
        base = [b for b in buckets if base_start <= b.bucket < start]
        source: str | None = "window"
        if not base:
            base = latest_buckets([b for b in buckets if b.bucket < start])
            source = "before" if base else None
        baseline, base_n = mean_load(base)
        during, event_n = mean_load([b for b in buckets if start <= b.bucket < until])
        ders.append({"device_id": dev, "ven_id": ven_of[dev], **_figures(
            baseline, during, event_n), "baseline_samples": base_n, "baseline_source": source})
    vens: dict[str, dict[str, Any]] = {}
    total = {**_figures(None, None, 0), "ders": len(ders), "ders_measured": 0}
    for der in ders:
        ven = vens.setdefault(der["ven_id"], {"ven_id": der["ven_id"], **_figures(
            None, None, 0), "ders": 0, "ders_measured": 0})
        ven["ders"] += 1
        _add(ven, der)
        _add(total, der)
    status = event.status_at(now)
    return {
        "event_id": event.event_id, "status": status.value,
        "baseline_start": base_start.isoformat(), "baseline_end": start.isoformat(),
        "event_start": start.isoformat(),
        "event_end": until.isoformat() if status is not EventStatus.FAR else None,
        "ders": ders, "vens": list(vens.values()), "total": total,
    }
